#!/usr/bin/env bash
# Installs what building skiff needs beyond a Rust toolchain: the musl target (the image's
# server is a static binary) and musl-gcc for the C parts of its allocator.
set -euo pipefail
rustup target list --installed | grep -qx x86_64-unknown-linux-musl ||
  rustup target add x86_64-unknown-linux-musl
if ! command -v musl-gcc >/dev/null; then
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq musl-tools >/dev/null
fi
