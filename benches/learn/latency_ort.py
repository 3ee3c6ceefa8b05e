"""Single-row predict latency of ONNX Runtime on the files `cargo bench --bench latency`
wrote, as JSON lines: the median over 7 batches of the mean time of one `run` call.

usage: python latency_ort.py ONNX_DIR
"""
import json
import pathlib
import sys
import timeit

import numpy as np
import onnxruntime as ort

folder = pathlib.Path(sys.argv[1])
options = ort.SessionOptions()
options.intra_op_num_threads = 1
for model in sorted(folder.glob("*.onnx")):
    row = np.array([json.loads(model.with_suffix(".json").read_text())], dtype=np.float32)
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: row})
    timer = timeit.Timer(lambda: session.run(None, {name: row}))
    loops, _ = timer.autorange()
    batches = timer.repeat(repeat=7, number=loops)
    ns = sorted(b / loops for b in batches)[3] * 1e9
    print(json.dumps({"estimator": model.stem, "ns": ns}), flush=True)
