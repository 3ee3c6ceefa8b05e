"""Checks in ONNX Runtime the models that tests/trees_export.rs writes.

    SKIFF_TREES_OUT=/tmp/trees-onnx cargo test -p skiff-learn --test trees_export
    python crates/learn/tests/trees_onnxruntime.py /tmp/trees-onnx

Each NAME.onnx runs on the rows of NAME.json; labels must equal the native ones and values
agree within 1e-5 + 1e-4·|v|. Exits non-zero on any mismatch; prints the largest difference.
"""

import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort


def main(folder: str) -> int:
    failures = 0
    largest = 0.0
    files = sorted(pathlib.Path(folder).glob("*.onnx"))
    if not files:
        print(f"no .onnx files in {folder}")
        return 1
    for path in files:
        case = json.loads(path.with_suffix(".json").read_text())
        x = np.asarray(case["x"], dtype=np.float32)
        native = case["native"]
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(None, {"X": x})))
        diff = 0.0
        for name, expected in native.items():
            got = outputs[name]
            if name == "label":
                got = [str(v) for v in got.tolist()]
                bad = sum(g != e for g, e in zip(got, expected))
                if bad or len(got) != len(expected):
                    print(f"FAIL {path.stem}: {bad} labels differ")
                    failures += 1
                continue
            expected = np.asarray(expected, dtype=np.float64).reshape(got.shape)
            delta = np.abs(got.astype(np.float64) - expected)
            diff = max(diff, float(delta.max()))
            if np.any(delta > 1e-5 + 1e-4 * np.abs(expected)):
                print(f"FAIL {path.stem}: {name} differs by up to {delta.max():.3g}")
                failures += 1
        largest = max(largest, diff)
        print(f"ok   {path.stem}: max |native - onnxruntime| = {diff:.3g}")
    print(f"onnxruntime {ort.__version__}: largest difference {largest:.3g}, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/trees-onnx"))
