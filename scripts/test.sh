#!/usr/bin/env bash
# The full test suite, set-up included: `scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The fuzz tests of the IDX reader seed from real Fashion-MNIST files.
scripts/setup.sh --fashion-mnist
source scripts/env.sh
cargo test --workspace --all-features --no-fail-fast
