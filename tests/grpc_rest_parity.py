"""Sends each case to a skiff server over REST and over gRPC and checks that every answer is
the same: tritonclient.http with binary tensors (its default) and with JSON tensors,
tritonclient.grpc with raw contents (its default), and typed gRPC contents through the
protocol's own stub.

Usage: grpc_rest_parity.py HTTP_HOST:PORT GRPC_HOST:PORT < CASES.json
CASES.json: [{"id": ..., "model": NAME, "inputs": [{"name", "shape", "datatype", "data"}]}],
data flat and row-major, null for a missing number. Prints one line per case; exits non-zero
after listing every difference.
"""
import json
import sys

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2, service_pb2_grpc

http_url, grpc_url = sys.argv[1:3]
cases = json.load(sys.stdin)
http = httpclient.InferenceServerClient(url=http_url, network_timeout=120)
grpcc = grpcclient.InferenceServerClient(url=grpc_url)
stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(grpc_url))
NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64,
         "BOOL": np.bool_, "BYTES": np.object_}
TYPED = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents",
         "INT64": "int64_contents", "BOOL": "bool_contents", "BYTES": "bytes_contents"}


def array(spec):
    data = spec["data"]
    if spec["datatype"] == "BYTES":
        values = np.array([s.encode() for s in data], dtype=np.object_)
    else:
        values = np.array([np.nan if v is None else v for v in data], dtype=NUMPY[spec["datatype"]])
    return values.reshape(spec["shape"])


def canonical(outputs):
    """name -> (datatype, shape, values as a list), BYTES as str."""
    out = {}
    for name, (datatype, values) in outputs.items():
        flat = values.reshape(-1)
        if datatype == "BYTES":
            flat = [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
        else:
            flat = flat.astype(NUMPY[datatype])
        out[name] = (datatype, list(values.shape), flat)
    return out


def same(a, b):
    if a.keys() != b.keys():
        return f"outputs {sorted(a)} vs {sorted(b)}"
    for name in a:
        (ta, sa, va), (tb, sb, vb) = a[name], b[name]
        if ta != tb or sa != sb:
            return f"{name}: {ta}{sa} vs {tb}{sb}"
        if ta == "BYTES":
            if va != vb:
                return f"{name}: {va[:5]}... vs {vb[:5]}..."
        elif not np.array_equal(va, vb, equal_nan=ta.startswith("FP")):
            equal = (va == vb) | (np.isnan(va) & np.isnan(vb)) if ta.startswith("FP") else va == vb
            i = int(np.argmax(~equal))
            return f"{name}: element {i}: {va[i]!r} vs {vb[i]!r}"
    return None


def via_http(case, binary):
    inputs = []
    for spec in case["inputs"]:
        x = array(spec)
        inp = httpclient.InferInput(spec["name"], list(x.shape), spec["datatype"])
        inp.set_data_from_numpy(x, binary_data=binary)
        inputs.append(inp)
    result = http.infer(case["model"], inputs, outputs=None if binary else [
        httpclient.InferRequestedOutput(o["name"], binary_data=False)
        for o in http.get_model_metadata(case["model"])["outputs"]])
    return canonical({o["name"]: (o["datatype"], result.as_numpy(o["name"]))
                      for o in result.get_response()["outputs"]})


def via_grpc_raw(case):
    inputs = []
    for spec in case["inputs"]:
        x = array(spec)
        inp = grpcclient.InferInput(spec["name"], list(x.shape), spec["datatype"])
        inp.set_data_from_numpy(x)
        inputs.append(inp)
    result = grpcc.infer(case["model"], inputs)
    response = result.get_response()
    assert len(response.raw_output_contents) == len(response.outputs), "raw in, raw out"
    return canonical({o.name: (o.datatype, result.as_numpy(o.name)) for o in response.outputs})


def via_grpc_typed(case):
    request = service_pb2.ModelInferRequest(model_name=case["model"])
    for spec in case["inputs"]:
        x = array(spec)
        tensor = request.inputs.add(name=spec["name"], datatype=spec["datatype"], shape=spec["shape"])
        getattr(tensor.contents, TYPED[spec["datatype"]]).extend(x.reshape(-1).tolist())
    response = stub.ModelInfer(request)
    assert not response.raw_output_contents, "typed in, typed out"
    outputs = {}
    for o in response.outputs:
        values = list(getattr(o.contents, TYPED[o.datatype]))
        outputs[o.name] = (o.datatype, np.array(values, dtype=NUMPY[o.datatype]).reshape(list(o.shape)))
    return canonical(outputs)


failures = []
for case in cases:
    reference = via_http(case, binary=True)
    answers = {"gRPC raw": via_grpc_raw(case), "gRPC typed": via_grpc_typed(case)}
    # JSON has no NaN: inputs with gaps go as binary tensors only.
    if not any(v is None for spec in case["inputs"] for v in spec["data"]):
        answers["REST JSON"] = via_http(case, binary=False)
    differences = [f"{way}: {d}" for way, answer in answers.items()
                   if (d := same(reference, answer)) is not None]
    rows = case["inputs"][0]["shape"][0]
    if differences:
        failures.append(f"{case['id']}: " + "; ".join(differences))
        print(f"FAIL {case['id']}: " + "; ".join(differences))
    else:
        print(f"ok   {case['id']}: {rows} rows, {len(reference)} outputs, {' = '.join(['REST binary', *answers])}")
if failures:
    print(f"{len(failures)} of {len(cases)} cases differ")
    sys.exit(1)
print(f"all {len(cases)} cases answered alike")
