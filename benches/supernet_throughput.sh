#!/usr/bin/env bash
# Training throughput of dynas-supernet against the same loop in eager PyTorch, interleaved so
# both see the same machine state: `benches/supernet_throughput.sh [ROUNDS] [STEPS]`.
#
# PYTHON must name a Python with torch 2.13.0 importable (a venv with `pip install torch==2.13.0`);
# the Rust side uses the project's libtorch (scripts/setup.sh). One JSON line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-20}
python=${PYTHON:-python3}
source scripts/env.sh
cargo build --release -q -p dynas-supernet --example supernet_throughput
rust=target/release/examples/supernet_throughput
for threads in 2 1; do
  for _ in $(seq "$rounds"); do
    "$rust" --steps "$steps" --warmup 3 --threads "$threads" | tail -n 1
    "$python" benches/supernet_throughput.py --steps "$steps" --warmup 3 --threads "$threads" 2>/dev/null | tail -n 1
  done
done
