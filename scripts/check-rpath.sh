#!/usr/bin/env bash
# Every executable a cargo command builds that links libtorch finds it on its own (an rpath to
# $LIBTORCH/lib), not through LD_LIBRARY_PATH:
#
#   scripts/check-rpath.sh test --workspace --all-features --no-run
#   scripts/check-rpath.sh build --release --workspace --all-features --examples --bins
#
# Runs `cargo <args>`, then `cargo <args> --message-format=json` (a no-op by then), lists the
# executables it reports that need libtorch but carry no rpath to it (a crate that links libtorch
# through a dependency's feature needs a build.rs calling dynas_build::embed_libtorch_rpath), and
# exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v readelf >/dev/null || { echo "check-rpath: readelf (binutils) not found" >&2; exit 2; }
[[ $# -gt 0 ]] || { echo "usage: scripts/check-rpath.sh <cargo subcommand and flags>" >&2; exit 2; }
# The build with its usual output first (a failed build fails this script), then the same
# command again, now a no-op, for the list of executables.
cargo "$@"
messages=$(mktemp)
trap 'rm -f "$messages"' EXIT
cargo "$@" --message-format=json --quiet >"$messages"
checked=0 missing=0
while IFS= read -r exe; do
  [[ -n $exe ]] || continue
  dynamic=$(readelf -d "$exe" 2>/dev/null) || continue
  grep -q 'Shared library: \[libtorch' <<<"$dynamic" || continue
  checked=$((checked + 1))
  if ! grep -E '\((RUNPATH|RPATH)\)' <<<"$dynamic" | grep -q 'torch'; then
    echo "no libtorch rpath: $exe" >&2
    missing=$((missing + 1))
  fi
done < <(python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])
' <"$messages")
echo "check-rpath: $checked executables link libtorch, $missing without an rpath to it"
if [[ $missing != 0 && -n ${LIBTORCH_USE_PYTORCH:-} ]]; then
  # A Python environment's libtorch: no LIBTORCH folder to embed; the README has users put
  # <site-packages>/torch/lib on LD_LIBRARY_PATH instead.
  echo "check-rpath: LIBTORCH_USE_PYTORCH is set: put its torch/lib on LD_LIBRARY_PATH" >&2
  exit 0
fi
[[ $missing == 0 ]]
