#!/usr/bin/env bash
# Builds and installs skiff: the CLI, the static linux/amd64 server that `skiff pack` puts
# into images, and the engine of model components. Layout: PREFIX/bin/skiff,
# PREFIX/lib/skiff/linux-amd64/skiff-server with the list of crates in it beside it
# (skiff-server.crates.tsv, for the image's SBOM) and
# PREFIX/lib/skiff/wasm32-wasip2/skiff-guest.wasm (and the same engine as a WASI preview-1
# command, wasm32-wasip1/skiff-module.wasm), where skiff looks for them at pack time.
#
#   scripts/install.sh [PREFIX]     (default: $PREFIX, else ~/.local)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-${PREFIX:-$HOME/.local}}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --locked --release --bin skiff
# writes the server and, beside it, its crate list straight into the prefix
images/build-server.sh "$prefix/lib/skiff"
images/build-guest.sh "$prefix/lib/skiff"
install -D -m 0755 "$target_dir/release/skiff" "$prefix/bin/skiff"
echo "installed $prefix/bin/skiff and, in $prefix/lib/skiff, linux-amd64/skiff-server (with skiff-server.crates.tsv) wasm32-wasip2/skiff-guest.wasm and wasm32-wasip1/skiff-module.wasm"
