#!/usr/bin/env bash
# Installs what building skiff's image servers needs beyond a Rust toolchain, for each PLATFORM
# given (default linux/amd64):
#
#   scripts/setup-build.sh [linux/amd64] [linux/arm64]
#
# linux/amd64: the x86_64-unknown-linux-musl target and musl-gcc (Debian's musl-tools) for the
# C parts of the allocator. linux/arm64: the aarch64-unknown-linux-musl target, and zig as the
# cross C compiler and linker through cargo-zigbuild (both from PyPI, in $SKIFF_CACHE/zig): zig
# ships musl's aarch64 headers and libc, so the allocator's C code is compiled against the libc
# it is linked with.
set -euo pipefail
cache=${SKIFF_CACHE:-$HOME/.cache/skiff}
sudo=; [ "$(id -u)" = 0 ] || sudo=sudo

target_added() {
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

for platform in "${@:-linux/amd64}"; do
  case $platform in
    linux/amd64)
      target_added x86_64-unknown-linux-musl
      if ! command -v musl-gcc >/dev/null; then
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq musl-tools >/dev/null
      fi
      ;;
    linux/arm64)
      target_added aarch64-unknown-linux-musl
      zig_venv=$cache/zig
      requirements="cargo-zigbuild==0.24.1 ziglang==0.17.1"
      if [ "$(cat "$zig_venv/requirements" 2>/dev/null)" != "$requirements" ]; then
        if ! python3 -c 'import ensurepip' 2>/dev/null; then
          $sudo apt-get update -qq
          DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
        fi
        rm -rf "$zig_venv"
        python3 -m venv "$zig_venv"
        # shellcheck disable=SC2086 # one word per requirement
        "$zig_venv/bin/pip" install -q --disable-pip-version-check $requirements
        echo "$requirements" >"$zig_venv/requirements"
      fi
      ;;
    *)
      echo "setup-build.sh: unknown platform $platform (linux/amd64 or linux/arm64)" >&2
      exit 2
      ;;
  esac
done
