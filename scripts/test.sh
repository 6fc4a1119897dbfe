#!/usr/bin/env bash
# The full test suite, set-up included: `scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
cargo test --workspace --all-features --no-fail-fast
