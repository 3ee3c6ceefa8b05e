"""KServe's own gRPC client (kserve.InferenceGRPCClient) against a server: readiness, then one
inference with typed contents and one with raw contents. Prints the answers as JSON.

Usage: kserve_grpc_infer.py HOST:PORT MODEL
"""
import asyncio
import json
import sys

import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest


async def main(url, model):
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 4.7, 1.5], [7.7, 2.6, 6.9, 2.3]], np.float32)
    out = {}
    async with InferenceGRPCClient(url=url, use_ssl=False, timeout=20) as client:
        out["live"] = await client.is_server_live()
        out["ready"] = await client.is_server_ready()
        out["model_ready"] = await client.is_model_ready(model)
        for binary in (False, True):
            tensor = InferInput(name="X", shape=list(x.shape), datatype="FP32")
            tensor.set_data_from_numpy(x, binary_data=binary)
            request = InferRequest(model_name=model, infer_inputs=[tensor], request_id=f"k{int(binary)}")
            response = await client.infer(request)
            outputs = {o.name: o.as_numpy() for o in response.outputs}
            out["raw" if binary else "typed"] = {
                "id": response.id,
                "model_name": response.model_name,
                "label": [v.decode() if isinstance(v, bytes) else str(v) for v in outputs["label"].ravel()],
                "probabilities": outputs["probabilities"].tolist(),
            }
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2]))
