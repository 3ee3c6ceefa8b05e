#!/usr/bin/env bash
# Builds the server that goes into skiff's images and installs it where `skiff pack` finds it:
#
#   images/build-server.sh RUNTIME_DIR     ->  RUNTIME_DIR/linux-amd64/skiff-server
#
# The binary is crates/server built for x86_64-unknown-linux-musl with the `server` profile
# (fat LTO, one codegen unit, stripped, panic=abort): fully static, so it runs in a scratch
# image with nothing else in it. A static binary cannot load ONNX Runtime, so it is built
# without the `ort` feature and serves on tract (images/gpu/ builds the glibc server instead).
set -euo pipefail
cd "$(dirname "$0")/.."
runtime_dir=${1:?usage: images/build-server.sh RUNTIME_DIR}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

scripts/setup-build.sh
cargo build --locked --profile server --target x86_64-unknown-linux-musl -p skiff-server \
  --no-default-features
install -D -m 0755 "$target_dir/x86_64-unknown-linux-musl/server/skiff-server" \
  "$runtime_dir/linux-amd64/skiff-server"
