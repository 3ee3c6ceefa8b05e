"""Checks a skiff server's gRPC endpoint with the official Triton gRPC client, as Triton and
KServe users call it, and with typed tensor contents through the protocol's own stub.

Usage: tritonclient_grpc_conformance.py HOST:PORT MODEL EXPECTED.json MAX_ELEMENTS MAX_BYTES
EXPECTED.json holds {"rows": [[...4 floats...], ...], "labels": [...], "probabilities": [[...], ...]}
as `skiff predict --proba` gave them for the same rows; the server runs with --max-elements
MAX_ELEMENTS and --max-body-bytes MAX_BYTES. Prints one line per check; exits non-zero on the
first failure with what differed.
"""
import json
import sys

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

url, model, expected_path, max_elements, max_bytes = sys.argv[1:6]
max_elements, max_bytes = int(max_elements), int(max_bytes)
expected = json.load(open(expected_path))
rows = np.array(expected["rows"], dtype=np.float32)
labels = expected["labels"]
probabilities = np.array(expected["probabilities"], dtype=np.float32)
client = grpcclient.InferenceServerClient(url=url)
stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(url))


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok   {name}")


def infer(x, datatype="FP32", outputs=None, model_name=model, version="", name="X"):
    inp = grpcclient.InferInput(name, list(x.shape), datatype)
    inp.set_data_from_numpy(x)
    return client.infer(model_name, [inp], model_version=version, outputs=outputs)


def decode(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.reshape(-1)]


def expect_error(name, status, needle, call):
    try:
        call()
    except InferenceServerException as e:
        check(name, e.status() == f"StatusCode.{status}" and needle in e.message(),
              f"got status {e.status()} message {e.message()!r}, want {status} with {needle!r}")
        return
    except grpc.RpcError as e:
        check(name, e.code().name == status and needle in e.details(),
              f"got status {e.code().name} message {e.details()!r}, want {status} with {needle!r}")
        return
    check(name, False, "no error raised")


check("server live", client.is_server_live())
check("server ready", client.is_server_ready())
check("model ready", client.is_model_ready(model))
check("model version 1 ready", client.is_model_ready(model, "1"))
check("unknown model is not ready", not client.is_model_ready("nope"))
check("unknown version is not ready", not client.is_model_ready(model, "9"))
meta = client.get_server_metadata()
check("server metadata", meta.name == "skiff" and "binary_tensor_data" in meta.extensions, meta)
meta = client.get_model_metadata(model)
check("model metadata", meta.name == model and list(meta.versions) == ["1"]
      and meta.platform == "onnx_onnxv1" and meta.inputs[0].name == "X"
      and meta.inputs[0].datatype == "FP32" and list(meta.inputs[0].shape) == [-1, 4], meta)
check("model metadata lists label and probabilities",
      [o.name for o in meta.outputs] == ["label", "probabilities"]
      and [o.datatype for o in meta.outputs] == ["BYTES", "FP32"], meta)
meta = client.get_model_metadata(model, "1")
check("versioned model metadata", meta.name == model, meta)

# The client's way: raw_input_contents in, raw_output_contents back.
result = infer(rows)
check("raw in, raw out: labels", decode(result.as_numpy("label")) == labels,
      f"{decode(result.as_numpy('label'))} vs {labels}")
p = result.as_numpy("probabilities")
check("raw in, raw out: probabilities", p.shape == probabilities.shape
      and np.allclose(p, probabilities, rtol=1e-5, atol=1e-6), f"{p} vs {probabilities}")
response = result.get_response()
check("raw in, raw out: raw_output_contents", len(response.raw_output_contents) == 2
      and all(not o.HasField("contents") for o in response.outputs), response.outputs)
check("response names the model and newest version",
      response.model_name == model and response.model_version == "1", response.model_name)

# One output, a versioned model, FP64 data coerced to the FP32 input, and an id echoed.
inp = grpcclient.InferInput("X", list(rows.shape), "FP64")
inp.set_data_from_numpy(rows.astype(np.float64))
result = client.infer(model, [inp], model_version="1", request_id="req-7",
                      outputs=[grpcclient.InferRequestedOutput("label")])
check("fp64 raw in, one output", decode(result.as_numpy("label")) == labels
      and result.as_numpy("probabilities") is None)
check("response echoes the id and version",
      result.get_response().id == "req-7" and result.get_response().model_version == "1")

# Typed contents in, typed contents out (what KServe's client sends unless told otherwise).
request = service_pb2.ModelInferRequest(model_name=model, id="typed")
tensor = request.inputs.add(name="X", datatype="FP32", shape=list(rows.shape))
tensor.contents.fp32_contents.extend(rows.reshape(-1).tolist())
typed = stub.ModelInfer(request)
by_name = {o.name: o for o in typed.outputs}
check("typed in, typed out: no raw contents", len(typed.raw_output_contents) == 0, typed)
check("typed in, typed out: labels",
      [b.decode() for b in by_name["label"].contents.bytes_contents] == labels
      and list(by_name["label"].shape) == [len(labels)], by_name["label"])
typed_p = np.array(by_name["probabilities"].contents.fp32_contents, dtype=np.float32)
check("typed in, typed out: probabilities",
      list(by_name["probabilities"].shape) == list(probabilities.shape)
      and np.allclose(typed_p.reshape(probabilities.shape), probabilities, rtol=1e-5, atol=1e-6))
request = service_pb2.ModelInferRequest(model_name=model)
tensor = request.inputs.add(name="X", datatype="INT64", shape=[1, 4])
tensor.contents.int64_contents.extend([5, 3, 1, 0])
check("typed INT64 contents into the FP32 input", len(stub.ModelInfer(request).outputs) == 2)

# BYTES: length-prefixed raw elements are read, then refused by the FP32 input.
expect_error("BYTES input for an FP32 input: INVALID_ARGUMENT", "INVALID_ARGUMENT", "must be FP32",
             lambda: infer(np.array([[b"a", b"bc", b"", b"d"]], dtype=np.object_), datatype="BYTES"))

# Errors, as the client reports them.
expect_error("unknown model: NOT_FOUND", "NOT_FOUND", "not found", lambda: infer(rows, model_name="nope"))
expect_error("unknown version: NOT_FOUND", "NOT_FOUND", "no version", lambda: infer(rows, version="9"))
expect_error("metadata of an unknown model: NOT_FOUND", "NOT_FOUND", "not found",
             lambda: client.get_model_metadata("nope"))
expect_error("wrong shape: INVALID_ARGUMENT", "INVALID_ARGUMENT", "shape",
             lambda: infer(rows.reshape(-1, 2)))
expect_error("unknown output: INVALID_ARGUMENT", "INVALID_ARGUMENT", "no output",
             lambda: infer(rows, outputs=[grpcclient.InferRequestedOutput("nope")]))
expect_error("wrong input name: INVALID_ARGUMENT", "INVALID_ARGUMENT", "no input \"Y\"",
             lambda: infer(rows[:1], name="Y"))
request = service_pb2.ModelInferRequest(model_name=model, raw_input_contents=[rows[:1].tobytes()])
tensor = request.inputs.add(name="X", datatype="FP32", shape=[1, 4])
tensor.contents.fp32_contents.extend([1, 2, 3, 4])
expect_error("typed and raw contents together: INVALID_ARGUMENT", "INVALID_ARGUMENT", "one way",
             lambda: stub.ModelInfer(request))
request = service_pb2.ModelInferRequest(model_name=model)
tensor = request.inputs.add(name="X", datatype="FP32", shape=[1, 4])
tensor.contents.fp64_contents.extend([1, 2, 3, 4])
expect_error("typed contents in the wrong field: INVALID_ARGUMENT", "INVALID_ARGUMENT",
             "contents.fp32_contents", lambda: stub.ModelInfer(request))
too_many = np.ones((max_elements // 4 + 1, 4), dtype=np.float32)
expect_error("too many elements: RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED",
             f"more than {max_elements} tensor elements", lambda: infer(too_many))
too_large = np.ones((max_bytes // 16 + 1, 4), dtype=np.float32)
expect_error("message over the size limit: RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED", "too large",
             lambda: infer(too_large))
index = client.get_model_repository_index(as_json=True)["models"]
check("repository index lists the model, ready",
      [(m["name"], m["version"], m["state"]) for m in index] == [(model, "1", "READY")])
# This server was not started with --model-control: loads and unloads are refused.
expect_error("repository load without model control: PERMISSION_DENIED", "PERMISSION_DENIED",
             "--model-control", lambda: client.load_model(model))
expect_error("repository unload without model control: PERMISSION_DENIED", "PERMISSION_DENIED",
             "--model-control", lambda: client.unload_model(model))

# Still serving after all of that.
check("still serving", decode(infer(rows).as_numpy("label")) == labels)
print("all checks passed")
