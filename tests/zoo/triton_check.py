"""Checks, with the official Triton HTTP client, a server serving every zoo model (make.py) under its id.

Usage: triton_check.py HOST:PORT MANIFEST.json [--skip-json]
For every supported case: the model metadata lists the input (FP32, [-1, F]; a table's input per
column, [-1, 1] of its type), the label and probability outputs and, for classifiers, the classes; all
rows (NaN included) inferred as binary tensors, and the NaN-free rows as JSON tensors (JSON has no NaN)
unless --skip-json, give ONNX Runtime's outputs: labels exactly, floats within 1e-4 + 1e-5 * |expected|.
Prints "ok  ID" or "FAIL ID: what differed" per case; exits 1 if any case failed.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient

TIMEOUT_S = 60.0


def compare(expected, got, is_label):
    """What differs between a manifest output and a returned array ("" when they agree)."""
    if is_label:
        want = [str(v) for v in np.asarray(expected).reshape(-1)]
        have = [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(got).reshape(-1)]
        if len(have) != len(want):
            return f"{len(have)} labels, want {len(want)}"
        wrong = [i for i, (h, w) in enumerate(zip(have, want)) if h != w]
        if wrong:
            i = wrong[0]
            return f"{len(wrong)} labels differ, first at [{i}]: {have[i]!r} != {want[i]!r}"
        return ""
    want = np.array(expected, dtype=np.float64)  # null (NaN in the manifest) becomes NaN
    have = np.asarray(got, dtype=np.float64)
    if have.shape != want.shape:
        return f"shape {list(have.shape)} != {list(want.shape)}"
    bad = ~((np.abs(have - want) <= 1e-4 + 1e-5 * np.abs(want)) | (np.isnan(have) & np.isnan(want)))
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        return f"{bad.sum()} values differ, first at {list(i)}: {have[i]:.7g} != {want[i]:.7g}"
    return ""


def check_outputs(case, result, rows, how):
    """Failures for every manifest output of the given rows in an InferResult-like object."""
    failures = []
    for name, expected in case["outputs"].items():
        got = result.as_numpy(name)
        if got is None:
            failures.append(f"{how}: output {name} missing")
            continue
        diff = compare([expected[i] for i in rows], got, name == case["label_output"])
        if diff:
            failures.append(f"{how}: {name}: {diff}")
    return failures


def check_metadata(case, meta):
    """Failures in the model metadata: the input, the label and probability outputs, the classes."""
    failures = []
    inputs = {i["name"]: i for i in meta.get("inputs", [])}
    if "inputs" in case:
        wanted = [{"name": i["name"], "datatype": i["datatype"], "shape": [-1, 1]} for i in case["inputs"]]
    else:
        wanted = [{"name": case["input"], "datatype": "FP32", "shape": [-1, case["features"]]}]
    for want in wanted:
        got = inputs.get(want["name"], {})
        if {k: got.get(k) for k in want} != want:
            failures.append(f"metadata input {got or 'missing'} != {want}")
    listed = [o["name"] for o in meta.get("outputs", [])]
    for name in (case["label_output"], case["proba_output"]):
        if name is not None and name not in listed:
            failures.append(f"metadata outputs {listed} lack {name}")
    if case["classes"] is not None:
        classes = (meta.get("parameters") or {}).get("classes")
        if classes != case["classes"]:
            failures.append(f"metadata classes {classes} != {case['classes']}")
    return failures


NUMPY_TYPES = {"BYTES": object, "FP32": np.float32, "FP64": np.float64, "INT64": np.int64}


def infer(client, case, rows, binary):
    """Infers the given manifest rows, every output requested, all as binary or all as JSON tensors."""
    if "inputs" in case:
        columns = [(i["name"], i["datatype"], np.array([i["values"][r] for r in rows], dtype=NUMPY_TYPES[i["datatype"]])
                    .reshape(-1, 1)) for i in case["inputs"]]
    else:
        columns = [(case["input"], "FP32", np.array([case["rows"][i] for i in rows], dtype=np.float32))]
    tensors = []
    for name, datatype, x in columns:  # null becomes NaN in float columns
        tensor = httpclient.InferInput(name, list(x.shape), datatype)
        tensor.set_data_from_numpy(x, binary_data=binary)
        tensors.append(tensor)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in case["outputs"]]
    return client.infer(case["id"], tensors, outputs=outputs)


def check_case(client, case, skip_json):
    failures = check_metadata(case, client.get_model_metadata(case["id"]))
    every_row = list(range(len(case["rows"] if "rows" in case else case["inputs"][0]["values"])))
    failures += check_outputs(case, infer(client, case, every_row, True), every_row, "binary")
    if not skip_json:
        json_rows = case.get("json_rows", case["csv_rows"])
        failures += check_outputs(case, infer(client, case, json_rows, False), json_rows, "json")
    return failures


def main():
    args = [a for a in sys.argv[1:] if a != "--skip-json"]
    if len(args) != 2:
        sys.exit(__doc__)
    url, manifest_path = args
    skip_json = "--skip-json" in sys.argv[1:]
    client = httpclient.InferenceServerClient(url, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S)
    failed = False
    for case in json.load(open(manifest_path)):
        if "unsupported" in case:
            print(f"skip {case['id']}: not convertible")
            continue
        try:
            failures = check_case(client, case, skip_json)
        except Exception as e:  # a refused request or a dropped connection fails this case, not the run
            failures = [f"{type(e).__name__}: {e}"]
        failed |= bool(failures)
        print(f"FAIL {case['id']}: {'; '.join(failures)}" if failures else f"ok  {case['id']}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
