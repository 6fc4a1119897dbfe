#!/usr/bin/env bash
# pymoo's NSGA-II next to dynas's strategies on NAS-Bench-201 (`nb201_hw.csv`), same seeds, same
# normalisation, budget counted as *distinct* architectures on both sides:
#
#   benches/pymoo_compare.sh [SEEDS] [BUDGET]
#
# Installs pinned pymoo and numpy into the git-ignored venv `.venv-pymoo` on first use (PyPI),
# then prints one line per latency column and strategy: mean and min HV share (%) of the true
# front over the seeds, and milliseconds per search in process (table already loaded).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-10}
budget=${2:-200}
csv=${CSV:-crates/dynas-data/data/nb201/nb201_hw.csv}
venv=.venv-pymoo
if ! "$venv/bin/python" -c 'import pymoo' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pymoo==0.6.1.5 numpy==1.26.4
fi
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target} cargo build --release -q -p dynas-search \
  --example search_surrogate_nb201
printf '%-18s %-9s %8s %8s %10s\n' column strategy 'mean HV%' 'min HV%' ms/search
"$venv/bin/python" benches/pymoo_compare.py --csv "$csv" --seeds "$seeds" --budget "$budget"
"${CARGO_TARGET_DIR:-target}/release/examples/search_surrogate_nb201" \
  --csv "$csv" --seeds "$seeds" --budget "$budget" | tail -n +3
