# Sourced by the scripts: lets binaries that link libtorch find it at run time.
# (Crates that link tch directly also embed an rpath; crates that get it through a feature of a
# dependency, such as dynas-search with dynas-exits/tch under --all-features, do not.)
torch_lib="${LIBTORCH:-$PWD/.deps/pytorch/torch}/lib"
if [[ -d $torch_lib ]]; then
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
