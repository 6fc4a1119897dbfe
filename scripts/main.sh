#!/usr/bin/env bash
# The main job, set-up included: `scripts/main.sh [--full]`.
#
# Runs the end-to-end story of dynas on real data, one stage per crate:
#   1. supernet: train a once-for-all supernet of the OFA-MNIST space on Fashion-MNIST
#      (sandwich rule + in-place distillation), save it, report subnet accuracies vs MACs;
#   2. search:   HADAS bi-level search (NSGA-II over NAS-Bench-201 backbones, inner search over
#                early exits and Jetson TX2 DVFS operating points), error / latency / energy;
#   3. search:   NSGA-II vs aging vs random on NAS-Bench-201 (hypervolume vs the true front);
#   4. dvfs:     runtime manager vs static / subnet-only / DVFS-only on four load traces.
# By default stage 1 is a short run (1 epoch on 20,000 images, a few minutes on 2 cores);
# `--full` trains the full schedule. Outputs go to runs/main/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --fashion-mnist
source scripts/env.sh

full=0
for arg in "$@"; do
  case "$arg" in
    --full) full=1 ;;
    *) echo "main.sh: unknown argument '$arg' (only --full)" >&2; exit 2 ;;
  esac
done

out=runs/main
mkdir -p "$out"
data=../shared/data
if [[ ! -d $data ]]; then
  echo "main.sh: the shared data folder $data (next to the repository) is missing" >&2
  exit 1
fi

echo "=== 1/4 supernet on Fashion-MNIST"
if [[ $full == 1 ]]; then
  supernet_args=(--epochs 10 --out "$out/supernet")
else
  supernet_args=(--epochs 1 --train-limit 20000 --samples 8 --sample-eval 1000 --out "$out/supernet")
fi
cargo run --release -p dynas-supernet --example supernet_fashion_mnist -- --no-progress "${supernet_args[@]}"

echo "=== 2/4 HADAS bi-level search (backbone x exits x DVFS)"
cargo run --release -p dynas-search --example search_hadas -- 0 5

echo "=== 3/4 NSGA-II / aging / random on NAS-Bench-201"
cargo run --release -p dynas-search --example search_nb201 -- "$data/nb201/nb201_hw.csv" 5
cargo run --release -p dynas-cli -- search table --csv "$data/nb201/nb201_hw.csv" \
  --minimize raspi4_latency --maximize acc_cifar100 --budget 500 --seed 0 \
  --out "$out/nb201_front.json" --svg "$out/nb201_front.svg"

echo "=== 4/4 runtime manager on load traces"
cargo run --release -p dynas-dvfs --example dvfs_compare

echo "=== done: outputs in $out/"
