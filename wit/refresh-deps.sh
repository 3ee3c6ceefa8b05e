#!/usr/bin/env bash
# Refreshes wit/deps, the WASI packages wit/model.wit uses, from the WIT files shipped in the
# wasmtime-wasi-http crate that Cargo.lock pins, so the guest is built against the WASI that
# skiff's own host implements.
#
#   wit/refresh-deps.sh           rewrite wit/deps
#   wit/refresh-deps.sh --check   fail, naming the files, if wit/deps differs (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=$(cargo metadata --locked --format-version 1 |
  python3 -c 'import json, sys
packages = json.load(sys.stdin)["packages"]
print(next(p["manifest_path"] for p in packages if p["name"] == "wasmtime-wasi-http"))')
source=$(dirname "$manifest")/wit/deps
[ -d "$source" ] || { echo "error: $source is missing: run cargo fetch" >&2; exit 1; }

if [ "${1:-}" = --check ]; then
  if ! diff -r "$source" wit/deps >/dev/null; then
    diff -rq "$source" wit/deps >&2 || true
    echo "error: wit/deps differs from $(basename "$(dirname "$manifest")")'s WIT: run wit/refresh-deps.sh" >&2
    exit 1
  fi
  exit 0
fi
rm -rf wit/deps.new
cp -r "$source" wit/deps.new
rm -rf wit/deps
mv wit/deps.new wit/deps
echo "wit/deps <- $(basename "$(dirname "$manifest")")"
