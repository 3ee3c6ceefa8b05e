#!/usr/bin/env bash
# Builds the engine of skiff's model components and installs it where `skiff pack --format
# component` finds it:
#
#   images/build-guest.sh RUNTIME_DIR   ->  RUNTIME_DIR/wasm32-wasip2/skiff-guest.wasm
#
# The engine is crates/guest (tract behind the skiff:model predictor, wit/model.wit's `engine`
# world) built for wasm32-wasip2 with its own release profile (size-optimised, LTO, stripped).
# It is a workspace of its own, so it builds with its own lock file. tract's wasm kernels use
# SIMD (simd128, which wasmtime, Node.js and browsers run). Paths of the build machine are
# remapped, as for the server, so the engine does not depend on where it was built.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime_dir=${1:?usage: images/build-guest.sh RUNTIME_DIR}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
registry_src=${CARGO_HOME:-$HOME/.cargo}/registry/src

rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+simd128 --remap-path-prefix=$PWD=/skiff --remap-path-prefix=$registry_src=/cargo --remap-path-prefix=$target_dir=/target"
# Its own target directory: the guest's profile and RUSTFLAGS would otherwise rebuild the host's.
cargo build --locked --release --target wasm32-wasip2 \
  --manifest-path crates/guest/Cargo.toml --target-dir "$target_dir/guest"
install -D -m 0644 "$target_dir/guest/wasm32-wasip2/release/skiff_guest.wasm" \
  "$runtime_dir/wasm32-wasip2/skiff-guest.wasm"
