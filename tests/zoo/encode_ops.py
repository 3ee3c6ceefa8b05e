"""Writes one-node graphs of the table preprocessing ops skl2onnx writes (Imputer,
OneHotEncoder, LabelEncoder) over their attribute layouts and input types, runs each in
onnxruntime, and writes what it answered.

    python tests/zoo/encode_ops.py OUTDIR

OUTDIR gets <name>.onnx per case and cases.json: [{"name", "model", "input": {"datatype",
"shape", "values"}, "outputs"}], numbers as lists with NaN as "nan". Deterministic.
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ROWS = 6
TYPES = {"FP32": (TensorProto.FLOAT, np.float32), "INT64": (TensorProto.INT64, np.int64),
         "BYTES": (TensorProto.STRING, object), "FP64": (TensorProto.DOUBLE, np.float64)}


def graph(name, op, attrs, in_type, out_type, shape, out_shape):
    node = helper.make_node(op, ["X"], ["Y"], domain="ai.onnx.ml", **attrs)
    g = helper.make_graph([node], name, [helper.make_tensor_value_info("X", TYPES[in_type][0], shape)],
                          [helper.make_tensor_value_info("Y", TYPES[out_type][0], out_shape)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])


def cases():
    nan = float("nan")
    floats = np.array([[1.0, nan, 0.0], [nan, 2.5, -1.0], [0.0, 0.0, nan],
                       [3.0, -0.0, 7.0], [nan, nan, nan], [2.0, 1.0, 0.5]], dtype=np.float32)
    ints = np.array([[1, 0, 5], [0, 0, 2], [7, 1, 0], [3, 3, 3], [0, 9, 1], [2, 2, 2]], dtype=np.int64)
    words = np.array([["a"], ["b"], [""], ["c"], ["zz"], ["a"]], dtype=object)
    # Imputer: NaN or a value replaced, one imputed value or one per column.
    for replaced, imputed, tag in [(nan, [9.0], "nan_one"), (nan, [1.5, -2.0, 4.0], "nan_each"),
                                   (0.0, [5.0], "zero_one"), (0.0, [1.0, 2.0, 3.0], "zero_each")]:
        yield (f"imputer_float_{tag}", graph("g", "Imputer", {"imputed_value_floats": imputed,
                                                             "replaced_value_float": replaced},
                                             "FP32", "FP32", [None, 3], [None, 3]), "FP32", floats)
    for replaced, imputed, tag in [(0, [-1], "one"), (2, [10, 20, 30], "each")]:
        yield (f"imputer_int_{tag}", graph("g", "Imputer", {"imputed_value_int64s": imputed,
                                                           "replaced_value_int64": replaced},
                                           "INT64", "INT64", [None, 3], [None, 3]), "INT64", ints)
    # OneHotEncoder: string and int64 categories, inputs of strings, int64 and floats (truncated),
    # unknown values as rows of zeros; [N, 1] inputs and [N] inputs.
    yield ("onehot_strings", graph("g", "OneHotEncoder", {"cats_strings": ["c", "a", "b", ""]}, "BYTES",
                                   "FP32", [None, 1], [None, 1, 4]), "BYTES", words)
    yield ("onehot_strings_flat", graph("g", "OneHotEncoder", {"cats_strings": ["a", "zz"]}, "BYTES", "FP32",
                                        [None], [None, 2]), "BYTES", words.reshape(-1))
    yield ("onehot_ints", graph("g", "OneHotEncoder", {"cats_int64s": [0, 1, 2, 3, 7]}, "INT64", "FP32",
                                [None, 3], [None, 3, 5]), "INT64", ints)
    yield ("onehot_floats", graph("g", "OneHotEncoder", {"cats_int64s": [0, 1, 2, 3]}, "FP32", "FP32",
                                  [None, 3], [None, 3, 4]),
           "FP32", np.array([[0.0, 1.9, 2.0], [3.5, -0.5, 1.0]] * 3, dtype=np.float32))
    # LabelEncoder: every key and value type skl2onnx writes, defaults given and not.
    yield ("label_strings_to_ints", graph("g", "LabelEncoder", {"keys_strings": ["a", "b", "c"],
                                                                "values_int64s": [2, 0, 1]},
                                          "BYTES", "INT64", [None, 1], [None, 1]), "BYTES", words)
    yield ("label_strings_to_ints_default", graph("g", "LabelEncoder", {"keys_strings": ["a", "b"],
                                                                        "values_int64s": [5, 6],
                                                                        "default_int64": -7},
                                                  "BYTES", "INT64", [None, 1], [None, 1]), "BYTES", words)
    yield ("label_strings_to_strings", graph("g", "LabelEncoder", {"keys_strings": ["a", ""],
                                                                   "values_strings": ["x", "empty"]},
                                             "BYTES", "BYTES", [None, 1], [None, 1]), "BYTES", words)
    yield ("label_strings_to_floats", graph("g", "LabelEncoder", {"keys_strings": ["c", "zz"],
                                                                  "values_floats": [0.5, -2.0],
                                                                  "default_float": 3.25},
                                            "BYTES", "FP32", [None, 1], [None, 1]), "BYTES", words)
    yield ("label_ints_to_strings", graph("g", "LabelEncoder", {"keys_int64s": [0, 1, 2],
                                                                "values_strings": ["zero", "one", "two"]},
                                          "INT64", "BYTES", [None, 3], [None, 3]), "INT64", ints)
    yield ("label_floats_to_ints", graph("g", "LabelEncoder", {"keys_floats": [0.0, 1.0, 2.5],
                                                               "values_int64s": [10, 11, 12]},
                                         "FP32", "INT64", [None, 3], [None, 3]), "FP32", floats)


def plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, float) and v != v:
        return "nan"
    return v


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    result = []
    for name, model, datatype, x in cases():
        onnx.checker.check_model(model)
        path = out / f"{name}.onnx"
        onnx.save(model, path)
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        (y,) = session.run(None, {"X": x})
        result.append({"name": name, "model": path.name,
                       "input": {"datatype": datatype, "shape": list(x.shape),
                                 "values": [plain(v) for v in x.reshape(-1).tolist()]},
                       "outputs": {"Y": [plain(v) for v in np.asarray(y).reshape(-1).tolist()]}})
    (out / "cases.json").write_text(json.dumps(result, allow_nan=False))
    print(f"{len(result)} preprocessing ops", file=sys.stderr)


if __name__ == "__main__":
    main()
