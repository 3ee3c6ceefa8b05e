"""Runs every skl2onnx fixture in onnxruntime on its test rows and prints the outputs as JSON.

    python onnxruntime_outputs.py FIXTURE_DIR

Prints {model file: {output name: {"shape": [...], "data": [...]}}}, data flat and row-major.
ZipMap outputs (a list of {label: probability} per row) come back as an [N, C] matrix, columns in
the ZipMap's label order.
"""

import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort


def plain(value):
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = np.array([list(row.values()) for row in value], dtype=np.float32)
    value = np.asarray(value)
    if value.dtype.kind in "OUS":
        data = [str(v) for v in value.ravel()]
    elif value.dtype.kind in "iub":
        data = [int(v) for v in value.ravel()]
    else:
        data = [float(v) for v in value.ravel()]
    return {"shape": list(value.shape), "data": data}


def main():
    here = pathlib.Path(sys.argv[1])
    manifest = json.loads((here / "inputs.json").read_text())
    results = {}
    for model, dataset in manifest["models"].items():
        session = ort.InferenceSession(str(here / model), providers=["CPUExecutionProvider"])
        x = np.array(manifest["datasets"][dataset], dtype=np.float32)
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(None, {session.get_inputs()[0].name: x})
        results[model] = {name: plain(v) for name, v in zip(names, outputs)}
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
