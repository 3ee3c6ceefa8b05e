#!/usr/bin/env bash
# The whole of skiff on the iris flowers, with nothing but this checkout and a Rust toolchain:
# install skiff, fit a model on a CSV file, export it to ONNX, pack it into an OCI image in a
# local layout, serve that image, and ask it for a prediction over the Open Inference Protocol.
#
#   examples/iris/run.sh            (PORT=8080 by default; files land in dist/iris/)
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=$PWD/dist
out=$prefix/iris
port=${PORT:-8080}
mkdir -p "$out"

echo "==> installing skiff into $prefix (the first build takes several minutes)"
scripts/install.sh "$prefix"
skiff=$prefix/bin/skiff

echo "==> fit"
"$skiff" fit logistic-regression --data examples/iris/train.csv --target species -o "$out/iris.onnx"

echo "==> predict (first rows of the test split)"
"$skiff" predict "$out/iris.onnx" --data examples/iris/test.csv --proba | head -n 4

echo "==> pack into an OCI image layout"
rm -rf "$out/image"
"$skiff" pack "$out/iris.onnx" -o "oci:$out/image:v1"

echo "==> serve the image on 127.0.0.1:$port"
"$skiff" serve "oci:$out/image:v1" --addr "127.0.0.1:$port" --drain-seconds 0 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
command -v curl >/dev/null || { echo "curl is needed: apt-get install -y curl" >&2; exit 1; }
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break
  kill -0 $server 2>/dev/null || { echo "the server exited" >&2; exit 1; }
  sleep 0.1
done

echo "==> infer: one flower, 5.9 cm x 3.0 cm sepals, 5.1 cm x 1.8 cm petals"
curl -sf "http://127.0.0.1:$port/v2/models/iris/infer" -H 'content-type: application/json' \
  -d '{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.9,3.0,5.1,1.8]}]}'
echo
