"""Reads TensorBoard event files with TensorBoard's own reader and with tbparse, and prints
what each saw as JSON: per run folder, every scalar (tag -> [[step, value], ...]) and the
HParams session's values, so the tests compare them with what skiff says it wrote.

    python tests/tensorboard_read.py LOGDIR
"""

import json
import os
import sys

from tbparse import SummaryReader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2


def value_of(v):
    kind = v.WhichOneof("kind")
    return {"number_value": v.number_value, "string_value": v.string_value,
            "bool_value": v.bool_value}.get(kind)


def accumulator(run_dir):
    ea = EventAccumulator(run_dir)
    ea.Reload()
    scalars = {tag: [[e.step, e.value] for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}
    hparams, status = {}, None
    for tag, content in ea.PluginTagToContent("hparams").items():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            hparams = {k: value_of(v) for k, v in data.session_start_info.hparams.items()}
        if data.HasField("session_end_info"):
            status = api_pb2.Status.Name(data.session_end_info.status)
    return {"scalars": scalars, "hparams": hparams, "status": status}


def tbparse(logdir):
    reader = SummaryReader(logdir, extra_columns={"dir_name"})
    runs = {}
    for row in reader.scalars.itertuples():
        runs.setdefault(row.dir_name, {"scalars": {}, "hparams": {}})["scalars"].setdefault(
            row.tag, []).append([int(row.step), float(row.value)])
    for row in reader.hparams.itertuples():
        value = row.value
        if hasattr(value, "item"):
            value = value.item()
        runs.setdefault(row.dir_name, {"scalars": {}, "hparams": {}})["hparams"][row.tag] = value
    return runs


def main():
    logdir = sys.argv[1]
    runs = {}
    for root, _, files in os.walk(logdir):
        if any(f.startswith("events.out.tfevents.") for f in files):
            runs[os.path.relpath(root, logdir)] = accumulator(root)
    print(json.dumps({"tensorboard": runs, "tbparse": tbparse(logdir)}))


main()
