"""Checks a skiff server with the official Triton HTTP client, as Triton and KServe users call it.

Usage: tritonclient_conformance.py HOST:PORT MODEL EXPECTED.json
EXPECTED.json holds {"rows": [[...4 floats...], ...], "labels": [...], "probabilities": [[...], ...]}
as `skiff predict --proba` gave them for the same rows. Prints one line per check; exits non-zero
on the first failure with what differed.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, model, expected_path = sys.argv[1:4]
expected = json.load(open(expected_path))
rows = np.array(expected["rows"], dtype=np.float32)
labels = expected["labels"]
probabilities = np.array(expected["probabilities"], dtype=np.float32)
client = httpclient.InferenceServerClient(url=url)


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok   {name}")


def infer(x, datatype="FP32", binary_in=True, outputs=None, model_name=model, version=""):
    inp = httpclient.InferInput("X", list(x.shape), datatype)
    inp.set_data_from_numpy(x, binary_data=binary_in)
    return client.infer(model_name, [inp], model_version=version, outputs=outputs)


def decode(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.reshape(-1)]


def expect_error(name, status, needle, call):
    try:
        call()
    except InferenceServerException as e:
        check(name, e.status() == str(status) and needle in e.message(),
              f"got status {e.status()} message {e.message()!r}, want {status} with {needle!r}")
        return
    check(name, False, "no error raised")


check("server live", client.is_server_live())
check("server ready", client.is_server_ready())
check("model ready", client.is_model_ready(model))
check("model version 1 ready", client.is_model_ready(model, "1"))
meta = client.get_server_metadata()
check("server metadata lists binary_tensor_data", "binary_tensor_data" in meta["extensions"], meta)
meta = client.get_model_metadata(model)
check("model metadata", meta["name"] == model and meta["inputs"][0]["name"] == "X"
      and meta["inputs"][0]["datatype"] == "FP32" and meta["inputs"][0]["shape"] == [-1, 4], meta)
check("model metadata lists label and probabilities",
      [o["name"] for o in meta["outputs"]] == ["label", "probabilities"], meta)

# The client's defaults: binary tensors both ways.
result = infer(rows)
check("binary in, binary out: labels", decode(result.as_numpy("label")) == labels,
      f"{decode(result.as_numpy('label'))} vs {labels}")
p = result.as_numpy("probabilities")
check("binary in, binary out: probabilities", p.shape == probabilities.shape
      and np.allclose(p, probabilities, rtol=1e-5, atol=1e-6), f"{p} vs {probabilities}")

# JSON tensors both ways.
outputs = [httpclient.InferRequestedOutput("label", binary_data=False),
           httpclient.InferRequestedOutput("probabilities", binary_data=False)]
result = infer(rows, binary_in=False, outputs=outputs)
check("json in, json out: labels", decode(result.as_numpy("label")) == labels)
check("json in, json out: probabilities",
      np.allclose(result.as_numpy("probabilities"), probabilities, rtol=1e-5, atol=1e-6))

# Mixed, one output only, versioned path, FP64 data coerced to the FP32 input.
outputs = [httpclient.InferRequestedOutput("label", binary_data=True)]
result = infer(rows.astype(np.float64), datatype="FP64", binary_in=True, outputs=outputs, version="1")
check("fp64 binary in, one binary output", decode(result.as_numpy("label")) == labels
      and result.as_numpy("probabilities") is None)
check("response names the model and version",
      result.get_response()["model_name"] == model and result.get_response()["model_version"] == "1")

# Errors, as the client reports them.
expect_error("unknown model: 404", 404, "not found", lambda: infer(rows, model_name="nope"))
expect_error("unknown version: 404", 404, "no version", lambda: infer(rows, version="9"))
expect_error("wrong shape: 400", 400, "shape", lambda: infer(rows.reshape(-1, 2)))
expect_error("wrong datatype: 400", 400, "must be FP32",
             lambda: client.infer(model, [httpclient.InferInput("X", [1, 1], "BYTES").set_data_from_numpy(
                 np.array([[b"a"]], dtype=np.object_))]))
expect_error("unknown output: 400", 400, "no output",
             lambda: infer(rows, outputs=[httpclient.InferRequestedOutput("nope")]))
wrong = httpclient.InferInput("Y", [1, 4], "FP32")
wrong.set_data_from_numpy(rows[:1])
expect_error("wrong input name: 400", 400, "no input \"Y\"", lambda: client.infer(model, [wrong]))
expect_error("model not ready: unknown", 404, "not found", lambda: client.get_model_metadata("nope"))
check("unknown model is not ready", not client.is_model_ready("nope"))
print("all checks passed")
