"""Writes tests/zoo/torch_policy.onnx: a reinforcement-learning policy network exported from
PyTorch the way RLlib's `export_policy_model(..., onnx=17)` exports a torch MLP policy: input
"obs" [batch_size, 8], outputs "output" (action logits [batch_size, 4]) and "values" (the value
head [batch_size]), batch axes dynamic, constants folded.

    python tests/zoo/torch_policy.py

PyTorch is a large install, so the file is committed and this script says how it was made; the
zoo test runs it with onnxruntime live as the reference.
"""

import pathlib

import torch
from torch import nn

OBS, ACTIONS, HIDDEN = 8, 4, 64


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.torso = nn.Sequential(nn.Linear(OBS, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh())
        self.logits = nn.Linear(HIDDEN, ACTIONS)
        self.value = nn.Linear(HIDDEN, 1)

    def forward(self, obs):
        features = self.torso(obs)
        return self.logits(features), self.value(features).squeeze(-1)


def main():
    torch.manual_seed(0)
    policy = Policy().eval()
    obs = torch.randn(2, OBS)
    out = pathlib.Path(__file__).resolve().parent / "torch_policy.onnx"
    torch.onnx.export(
        policy, (obs,), str(out), export_params=True, opset_version=17, do_constant_folding=True,
        input_names=["obs"], output_names=["output", "values"],
        dynamic_axes={"obs": {0: "batch_size"}, "output": {0: "batch_size"}, "values": {0: "batch_size"}},
        dynamo=False)
    print(f"wrote {out} with torch {torch.__version__}")


if __name__ == "__main__":
    main()
