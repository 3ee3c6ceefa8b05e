#!/usr/bin/env bash
# Builds and installs skiff: the CLI, and the static linux/amd64 server that `skiff pack` puts
# into images. Layout: PREFIX/bin/skiff and PREFIX/lib/skiff/linux-amd64/skiff-server, where
# skiff looks for it at pack time.
#
#   scripts/install.sh [PREFIX]     (default: $PREFIX, else ~/.local)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-${PREFIX:-$HOME/.local}}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --locked --release --bin skiff
images/build-server.sh "$prefix/lib/skiff"
install -D -m 0755 "$target_dir/release/skiff" "$prefix/bin/skiff"
echo "installed $prefix/bin/skiff and $prefix/lib/skiff/linux-amd64/skiff-server"
