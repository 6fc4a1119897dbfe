#!/usr/bin/env bash
# Training throughput of dynas-supernet against the same loop in eager PyTorch:
# `benches/supernet_throughput.sh [ROUNDS] [STEPS]`.
#
# Both sides train the identical subnets: the Rust side draws the list once (seed 0) into
# runs/throughput-subnets.json and both read it. Runs are interleaved (which side goes first
# alternates by round) so both see the same machine state. One JSON line per run.
#
# PYTHON may name a Python with torch 2.13.0 importable; otherwise the git-ignored venv
# `.venv-torch` is created with `pip install torch==2.13.0` from PyPI (about 4.7 GB). The Rust
# side uses the project's libtorch (scripts/setup.sh; LIBTORCH=$PWD/.deps/pytorch/torch).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-20}
warmup=3
if [[ -z ${PYTHON:-} ]]; then
  venv=.venv-torch
  if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch==2.13.0
  fi
  PYTHON=$venv/bin/python
fi
source scripts/env.sh
cargo build --release -q -p dynas-supernet --example supernet_throughput
rust=target/release/examples/supernet_throughput
list=runs/throughput-subnets.json
rm -f "$list"
# Draws and writes the list once; every timed run reads it.
"$rust" --steps "$steps" --warmup "$warmup" --subnets "$list" --list-only 1
run_rust() {
  "$rust" --steps "$steps" --warmup "$warmup" --threads "$1" --subnets "$list" | tail -n 1
}
run_python() {
  "$PYTHON" benches/supernet_throughput.py --steps "$steps" --warmup "$warmup" --threads "$1" \
    --subnets "$list" 2>/dev/null | tail -n 1
}
for threads in 2 1; do
  for round in $(seq "$rounds"); do
    if (( round % 2 )); then
      run_rust "$threads"; run_python "$threads"
    else
      run_python "$threads"; run_rust "$threads"
    fi
  done
done
