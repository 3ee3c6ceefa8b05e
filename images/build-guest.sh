#!/usr/bin/env bash
# Builds the engine of skiff's model components, and the same engine as a WASI preview-1
# command, and installs them where `skiff pack --format component` and `--format module` find
# them:
#
#   images/build-guest.sh RUNTIME_DIR   ->  RUNTIME_DIR/wasm32-wasip2/skiff-guest.wasm
#                                           RUNTIME_DIR/wasm32-wasip1/skiff-module.wasm
#
# The engine is crates/guest (tract behind the skiff:model predictor, and the Open Inference
# Protocol over wasi:http: wit/model.wit's `engine` world). It is built for wasm32-wasip1 and
# made a component by wasm-component-ld (rustc's linker for wasm32-wasip2) with the
# `wasi_snapshot_preview1` proxy adapter: the adapter maps what Rust's std asks of WASI onto the
# wasi:http/proxy world, so the component imports nothing beyond it and `wasmtime serve` runs it
# with no flags. (Built for wasm32-wasip2, std would also import wasi:cli/environment, exit
# and terminal-*, which proxy hosts do not give.) The command (crates/guest/src/module.rs) is
# linked from the same compiled crates as a core module, for hosts without the component model.
#
# Its release profile is size-optimised, LTO, stripped. It is a workspace of its own, so it
# builds with its own lock file. tract's wasm kernels use SIMD (simd128, which wasmtime,
# Node.js and browsers run). Paths of the build machine are remapped, as for the server, so the
# engine does not depend on where it was built.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime_dir=${1:?usage: images/build-guest.sh RUNTIME_DIR}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
registry_src=${CARGO_HOME:-$HOME/.cargo}/registry/src

rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
linker=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/wasm-component-ld
[ -x "$linker" ] || { echo "error: $linker is missing: update the Rust toolchain (1.82 or newer ships it)" >&2; exit 1; }
. images/inputs.sh
engine=$runtime_dir/wasm32-wasip2/skiff-guest.wasm
module=$runtime_dir/wasm32-wasip1/skiff-module.wasm
inputs=$(build_inputs crates/guest/Cargo.toml wasm32-wasip1)
if up_to_date "$engine" "$inputs" && up_to_date "$module" "$inputs"; then
  echo "build-guest.sh: $engine and $module are up to date (their inputs are unchanged)"
  exit 0
fi
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+simd128 -C linker=$linker -C linker-flavor=wasm-ld --remap-path-prefix=$PWD=/skiff --remap-path-prefix=$registry_src=/cargo --remap-path-prefix=$target_dir=/target"
# Its own target directory: the guest's profile and RUSTFLAGS would otherwise rebuild the host's.
# The link arguments go to the last crate only, so both builds share every other.
guest=(--locked --release --target wasm32-wasip1 --manifest-path crates/guest/Cargo.toml
  --target-dir "$target_dir/guest")
cargo rustc "${guest[@]}" --lib -- -C link-arg=--wasi-adapter=proxy
cargo rustc "${guest[@]}" --bin skiff-module -- -C link-arg=--skip-wit-component
install -D -m 0644 "$target_dir/guest/wasm32-wasip1/release/skiff_guest.wasm" "$engine"
install -D -m 0644 "$target_dir/guest/wasm32-wasip1/release/skiff-module.wasm" "$module"
stamp "$engine" "$inputs"
stamp "$module" "$inputs"
