#!/usr/bin/env bash
# The full test suite, set-up included: `scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The fuzz tests of the IDX reader seed from real Fashion-MNIST files; the study store's tests
# run a throwaway PostgreSQL cluster.
scripts/setup.sh --fashion-mnist --postgres
source scripts/env.sh
cargo test --workspace --all-features --no-fail-fast
