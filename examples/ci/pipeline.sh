#!/usr/bin/env bash
# A model's CI pipeline in skiff commands only: fit, evaluate against a quality floor, pack an
# image, push it, and print the Kubernetes manifests that run it. The GitHub Actions workflow
# beside this file runs each stage as a step; run them all here, against any registry:
#
#   examples/ci/pipeline.sh [STAGE...]     (stages: fit evaluate pack push manifests; default all)
#
# Settings, from the environment:
#   REGISTRY        HOST[:PORT] to push to (push, manifests); e.g. 127.0.0.1:5000 or ghcr.io
#   REPOSITORY      repository in it (default: iris)
#   TAG             image tag (default: the commit, else latest)
#   ACCURACY_FLOOR  evaluate fails below this test accuracy (default: 0.9)
#   INSECURE        1 to talk plain HTTP to a local registry without TLS
#   OUT             where files land (default: dist/ci)
#   SKIFF           the skiff binary (default: skiff on PATH)
# Registry credentials come from SKIFF_REGISTRY_USERNAME / SKIFF_REGISTRY_PASSWORD or docker's
# config.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
skiff=${SKIFF:-skiff}
out=${OUT:-dist/ci}
repository=${REPOSITORY:-iris}
tag=${TAG:-$(git rev-parse --short HEAD 2>/dev/null || echo latest)}
floor=${ACCURACY_FLOOR:-0.9}
insecure=()
[ "${INSECURE:-0}" = 1 ] && insecure=(--insecure)
mkdir -p "$out"

image() {
  [ -n "${REGISTRY:-}" ] || { echo "REGISTRY is not set: say where to push (HOST[:PORT])" >&2; exit 2; }
  echo "$REGISTRY/$repository:$tag"
}

fit() {
  "$skiff" fit logistic-regression --data examples/iris/train.csv --target species \
    -o "$out/model.onnx" --json > "$out/fit.json"
  echo "fitted $out/model.onnx"
}

evaluate() {
  # Prints the metrics, then fails the pipeline when test accuracy is below the floor.
  "$skiff" eval "$out/model.onnx" --data examples/iris/test.csv --target species \
    --fail-under "accuracy=$floor"
}

pack() {
  rm -rf "$out/image"
  "$skiff" pack "$out/model.onnx" --name iris -o "oci:$out/image:$tag"
}

push() {
  "$skiff" push "oci:$out/image:$tag" "docker://$(image)" "${insecure[@]}"
}

manifests() {
  "$skiff" k8s "$(image)" --name iris | tee "$out/k8s.yaml"
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(fit evaluate pack push manifests)
for stage in "${stages[@]}"; do
  case $stage in
    fit | evaluate | pack | push | manifests) echo "==> $stage"; "$stage" ;;
    *) echo "unknown stage $stage: fit, evaluate, pack, push or manifests" >&2; exit 2 ;;
  esac
done
