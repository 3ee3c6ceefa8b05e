#!/usr/bin/env bash
# Builds and installs skiff: the CLI, and the static linux/amd64 server that `skiff pack` puts
# into images. Layout: $PREFIX/bin/skiff and $PREFIX/lib/skiff/linux-amd64/skiff-server.
#
#   scripts/install.sh [PREFIX]     (default PREFIX: ~/.local)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-${PREFIX:-$HOME/.local}}
target_dir=${CARGO_TARGET_DIR:-target}

scripts/setup-build.sh
cargo build --locked --release --bin skiff
cargo build --locked --profile server --target x86_64-unknown-linux-musl -p skiff-server

install -D -m 0755 "$target_dir/release/skiff" "$prefix/bin/skiff"
install -D -m 0755 "$target_dir/x86_64-unknown-linux-musl/server/skiff-server" \
  "$prefix/lib/skiff/linux-amd64/skiff-server"
echo "installed $prefix/bin/skiff and $prefix/lib/skiff/linux-amd64/skiff-server"
