# Sourced by the test and CI scripts: lets binaries that link libtorch find it at run time.
# Every crate that links libtorch, directly or through a dependency's feature, also embeds an
# rpath to it (dynas-build; scripts/check-rpath.sh checks), so this is a fallback, not a need.
torch_lib="${LIBTORCH:-$PWD/.deps/pytorch/torch}/lib"
if [[ -d $torch_lib ]]; then
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
