"""Writes mlp.onnx, the MLP of scripts/gpu-check.sh's throughput benchmark: 64 features ->
256 -> 256 -> 8 classes (Gemm/Relu/Gemm/Relu/Gemm/Softmax, as torch.onnx.export writes
nn.Sequential), float32 weights drawn with a fixed seed. Its answers mean nothing; its shape is a
typical tabular network's, large enough that a batch is real work for a GPU.

    python benches/gpu/make_mlp.py        # needs numpy and onnx
"""
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZES = [64, 256, 256, 8]


def main():
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    x = "input"
    for i, (n_in, n_out) in enumerate(zip(SIZES, SIZES[1:])):
        w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        b = (rng.standard_normal(n_out) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"fc{i}.weight"), numpy_helper.from_array(b, f"fc{i}.bias")]
        y = f"/fc{i}/Gemm_output_0"
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [y], name=f"/fc{i}/Gemm", transB=1))
        x = y
        if i < len(SIZES) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"/act{i}/Relu_output_0"], name=f"/act{i}/Relu"))
            x = f"/act{i}/Relu_output_0"
    nodes.append(helper.make_node("Softmax", [x], ["output"], name="/softmax/Softmax", axis=1))
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", SIZES[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", SIZES[-1]])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytorch", ir_version=8)
    onnx.checker.check_model(model)
    onnx.save_model(model, Path(__file__).with_name("mlp.onnx"))


if __name__ == "__main__":
    main()
