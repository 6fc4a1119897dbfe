#!/usr/bin/env bash
# The main job, set-up included: `scripts/main.sh [--full]`.
#
# Runs the end-to-end story of dynas on real data, one stage per crate:
#   1. supernet: train a once-for-all supernet of the OFA-MNIST space on Fashion-MNIST
#      (sandwich rule + in-place distillation), save it, report subnet accuracies vs MACs;
#   2. exits:    early-exit heads on the supernet's largest subnet, thresholds calibrated on
#                validation images, MACs and host latency of dynamic inference on held-out ones;
#   3. hadas:    HADAS on the trained supernet (`dynas hadas`): a surrogate-assisted search over
#                its backbones scored on validation images, per promising backbone exit heads trained with
#                distillation, thresholds calibrated, exit subsets and Jetson AGX Xavier
#                CPU/GPU/memory clocks searched (measured per-layer LUT x DVFS laws fitted on
#                measured clock sweeps); writes a deployment and reports on the test split
#                against the largest subnet with exits at the highest clocks; then the runtime
#                manager simulated on that deployment under load traces;
#   4. dofa:     Dynamic-OFA: a Pareto family pre-sampled from the supernet (validation accuracy,
#                host latency), served on test images under a co-runner following load traces,
#                static / reactive / predictive managers against the feasibility floor;
#   5. goldennas: GoldenNAS (`dynas goldennas`): the width-elastic supernet, its channels sorted
#                by importance, trained with progressive space shrinking toward the host and
#                the Jetson AGX Xavier table (performance models fitted on a few measurements,
#                held-out error reported), NSGA-II GoldenNets, the first target's GoldenNet
#                made depth-adaptive (stored batch norm per depth, self-distillation); writes a
#                deployment, then the runtime manager simulated on it;
#   6. search:   surrogate vs NSGA-II vs aging vs random on NAS-Bench-201 (hypervolume vs the
#                true front), and the runtime manager vs static / subnet-only / DVFS-only on
#                four load traces.
# By default stages 1-2 are short runs (1 epoch on 20,000 images, a few minutes on 2 cores);
# `--full` trains the recipe of docs/benchmarks.md (14 epochs, about 25 minutes on 2 cores).
# Outputs go to runs/main/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --fashion-mnist

full=0
for arg in "$@"; do
  case "$arg" in
    --full) full=1 ;;
    *) echo "main.sh: unknown argument '$arg' (only --full)" >&2; exit 2 ;;
  esac
done

out=runs/main
mkdir -p "$out"

# One build, one feature set, for every program the stages run (a cargo invocation per stage
# resolved features per package and rebuilt the workspace four times). The build checks that
# every executable linking libtorch carries its rpath, so nothing needs LD_LIBRARY_PATH.
echo "=== 0/6 build (release, all features)"
scripts/check-rpath.sh build --release --all-features \
  -p dynas-supernet -p dynas-serve -p dynas-cli -p dynas-search -p dynas-dvfs --bin dynas \
  --example supernet_fashion_mnist --example exits_supernet_fashion_mnist \
  --example dynamic_ofa --example search_nb201 --example search_surrogate_nb201 \
  --example dvfs_compare
bin=${CARGO_TARGET_DIR:-target}/release
ex=$bin/examples
# The published measurements ship in the repository (crates/dynas-data/data, with provenance).
data=crates/dynas-data/data

echo "=== 1/6 supernet on Fashion-MNIST"
if [[ $full == 1 ]]; then
  supernet_args=(--epochs 14 --random-subnets 1 --pad 0 --calib-batches 10)
  exits_args=(--head-epochs 3)
else
  supernet_args=(--epochs 1 --train-limit 20000 --samples 8 --sample-eval 1000)
  exits_args=(--head-epochs 1 --latency-samples 500)
fi
"$ex/supernet_fashion_mnist" --no-progress \
  "${supernet_args[@]}" --out "$out/supernet"

echo "=== 2/6 early exits on the supernet's largest subnet"
"$ex/exits_supernet_fashion_mnist" \
  --supernet "$out/supernet/supernet.safetensors" --max-drop 0.003 "${exits_args[@]}" --out "$out/exits"

echo "=== 3/6 HADAS on the supernet (backbone x exits x DVFS) -> deployment -> runtime manager"
if [[ $full == 1 ]]; then
  hadas_args=()
else
  hadas_args=(--outer-budget 8 --inner-population 8 --inner-generations 3 --head-train-images 3000)
fi
"$bin/dynas" hadas --no-progress \
  --supernet "$out/supernet/supernet.safetensors" "${hadas_args[@]}" \
  --out "$out/hadas"
# A latency target every deployed configuration can meet on an idle device: 1.5x the fastest.
target_ms=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(round(1.5*min(p["metrics"]["latency_ms"] for p in d["points"]), 4))' "$out/hadas/deployment.json")
"$bin/dynas" govern simulate --configs "$out/hadas/deployment.json" \
  --trace builtin:step --policy all --target-ms "$target_ms" --out "$out/hadas/runtime.json"
# The deployment executed on this host: every point alone on the test split (measured top-1,
# exit rates and latency beside the deployment's prediction), then served under load.
if [[ $full == 1 ]]; then check_images=10000; else check_images=2000; fi
"$bin/dynas" serve --supernet "$out/supernet/supernet.safetensors" \
  --deployment "$out/hadas/deployment.json" --check-images "$check_images" \
  --traces step --time-scale 0.5 --out "$out/hadas/serve.json"

echo "=== 4/6 Dynamic-OFA: pre-sampled family served under a real co-runner load"
if [[ $full == 1 ]]; then
  dofa_split=()
  dofa_args=(--samples 40 --family 6)
else
  dofa_split=(--train-limit 20000)
  dofa_args=(--samples 20 --family 4 --repeats 15 --calib-batches 5)
fi
# presample refuses a folder that already holds a family: this job's previous one goes.
rm -rf "$out/dofa"
"$ex/dynamic_ofa" presample \
  --supernet "$out/supernet" "${dofa_split[@]}" "${dofa_args[@]}" --out "$out/dofa"
"$ex/dynamic_ofa" serve \
  --supernet "$out/supernet" "${dofa_split[@]}" --family "$out/dofa" --traces step,periodic \
  --time-scale 0.5

echo "=== 5/6 GoldenNAS: shrinking toward two targets during training -> GoldenNets -> depth-adaptive net -> runtime manager"
if [[ $full == 1 ]]; then
  # The reduced recipe of docs/goldennas.md (a few hours on 2 cores, with the control).
  goldennas_args=(--warmup-images 20000 --stages 3 --images-per-stage 20000)
else
  goldennas_args=(--train-limit 10000 --validation 1000 --test-limit 1000 --warmup-images 1500
    --stages 2 --images-per-stage 1500 --shrink-samples 8 --calib-batches 1 --fit-networks 8
    --held-out-networks 4 --host-repeats 5 --population 4 --evaluations 8
    --finetune-images 1000 --no-control)
fi
"$bin/dynas" goldennas --shared-data "$data" "${goldennas_args[@]}" --out "$out/goldennas"
target_ms=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(round(1.5*min(p["metrics"]["latency_ms"] for p in d["points"]), 4))' "$out/goldennas/deployment.json")
"$bin/dynas" govern simulate --configs "$out/goldennas/deployment.json" \
  --trace builtin:step --policy all --target-ms "$target_ms" --out "$out/goldennas/runtime.json"

echo "=== 6/6 search strategies on NAS-Bench-201 and the runtime manager on load traces"
"$ex/search_nb201" "$data/nb201/nb201_hw.csv" 5
"$ex/search_surrogate_nb201" --seeds 2 --budget 200
"$bin/dynas" search table --csv "$data/nb201/nb201_hw.csv" \
  --minimize raspi4_latency --maximize acc_cifar100 --budget 500 --seed 0 \
  --out "$out/nb201_front.json" --svg "$out/nb201_front.svg"

"$ex/dvfs_compare"

echo "=== done: outputs in $out/"
