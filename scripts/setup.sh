#!/usr/bin/env bash
# One-time, idempotent set-up for building and testing dynas on a fresh machine.
#
#   scripts/setup.sh                 # libtorch (CPU use) into .deps/pytorch, rustfmt/clippy
#   scripts/setup.sh --fashion-mnist # ... and Debian's dataset-fashion-mnist
#   scripts/setup.sh --postgres      # ... and Debian's PostgreSQL server binaries (the study
#                                    #     store's tests start a throwaway cluster with them)
#
# libtorch comes from PyPI's torch==2.13.0 wheel (the version tch 0.26 expects), installed
# without its Python dependencies into the git-ignored .deps/pytorch; .cargo/config.toml points
# LIBTORCH at it. A user with their own libtorch sets LIBTORCH (or LIBTORCH_USE_PYTORCH=1)
# before building and this step is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
TORCH_DIR=.deps/pytorch
want_fashion_mnist=0
want_postgres=0
for arg in "$@"; do
  case "$arg" in
    --fashion-mnist) want_fashion_mnist=1 ;;
    --postgres) want_postgres=1 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

log() { echo "[setup] $*"; }

# Rust components used by the test and CI commands.
if command -v rustup >/dev/null 2>&1; then
  for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
      log "installing rust component $component"
      rustup component add "$component"
    fi
  done
fi

# libtorch, unless the user brings their own.
if [[ -n "${LIBTORCH:-}" || -n "${LIBTORCH_USE_PYTORCH:-}" ]]; then
  log "using the user's libtorch (LIBTORCH=${LIBTORCH:-} LIBTORCH_USE_PYTORCH=${LIBTORCH_USE_PYTORCH:-})"
elif [[ -f "$TORCH_DIR/torch/lib/libtorch_cpu.so" && -f "$TORCH_DIR/.dynas-torch-$TORCH_VERSION" ]]; then
  log "libtorch $TORCH_VERSION already in $TORCH_DIR"
else
  log "installing torch==$TORCH_VERSION (libtorch, CPU use, ~1.3 GB) into $TORCH_DIR"
  rm -rf "$TORCH_DIR"
  mkdir -p "$TORCH_DIR"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$TORCH_DIR" \
    "torch==$TORCH_VERSION" nvidia-cuda-runtime nvidia-cuda-cupti
  touch "$TORCH_DIR/.dynas-torch-$TORCH_VERSION"
fi

# Fashion-MNIST from Debian, for the examples and figures that train on it.
if [[ $want_fashion_mnist == 1 && ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  log "installing Debian's dataset-fashion-mnist"
  sudo_cmd=""
  if [[ $(id -u) != 0 ]]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq dataset-fashion-mnist
fi
# PostgreSQL's server binaries (initdb, pg_ctl) for the study store's tests; nothing is started
# here, the tests run a throwaway cluster of their own.
if [[ $want_postgres == 1 ]] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  log "installing Debian's postgresql"
  sudo_cmd=""
  if [[ $(id -u) != 0 ]]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql
fi
log "done"
