"""Tiny trained runs shared by the export tests (PyTorch, ONNX, TensorBoard), numpy only.

One genotype holds every primitive and AmoebaNet's conv_7x1_1x7; in the reduction cell every op
reads a cell input, so each runs at stride 2 (skip_connect as FactorizedReduce). Each op runs in at
least one cell (sep_conv_5x5 at stride 1 only, the identity skip_connect not at all, to make room
for conv_7x1_1x7 in both). layers=4 gives a normal
cell, two reduction cells (the auxiliary head after the second, on 8x8 features as in DARTS)
and a normal cell whose preprocess0 is a FactorizedReduce.
"""
import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "pytorch"))
import safetensors_np  # noqa: E402

GENOTYPE = ("Genotype(normal=[('max_pool_3x3', 0), ('avg_pool_3x3', 1), ('conv_7x1_1x7', 0), ('sep_conv_3x3', 2), "
            "('sep_conv_5x5', 1), ('sep_conv_7x7', 3), ('dil_conv_3x3', 0), ('dil_conv_5x5', 4)], "
            "normal_concat=[2, 3, 4, 5], "
            "reduce=[('max_pool_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
            "('conv_7x1_1x7', 1), ('sep_conv_7x7', 0), ('dil_conv_3x3', 0), ('dil_conv_5x5', 1)], "
            "reduce_concat=[2, 3, 4, 5])")
N_TEST = 64


def make_run(tmp, asap_run, name, auxiliary, extra=()):
    """Trains the evaluation network for 3 epochs on tiny data; returns the run folder."""
    data = os.path.join(tmp, "data")
    if not os.path.exists(data):
        subprocess.run([sys.executable, os.path.join(HERE, "make_tiny_idx.py"), data, "320", str(N_TEST), "32"],
                       check=True)
    cfg = os.path.join(tmp, name + ".yaml")
    with open(cfg, "w") as f:
        f.write(f"""data:
  root: {data}
  eval_batch_size: 32
train:
  genotype: "{GENOTYPE}"
  epochs: 3
  batch_size: 32
  network: {{C: 4, layers: 4, auxiliary: {str(auxiliary).lower()}, drop_path: 0.1}}
run:
  seed: 5
  threads: 2
  progress: false
  plots: false
""")
    out = os.path.join(tmp, name)
    subprocess.run([asap_run, cfg, "--out", out, "--stage", "train", *extra], check=True, stdout=subprocess.DEVNULL)
    return out


def test_images(data_dir, n=N_TEST):
    """(uint8 images [n, 1, H, W], int labels [n]) from the tiny IDX test split."""
    with gzip.open(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz")) as f:
        _, count, h, w = struct.unpack(">IIII", f.read(16))
        images = np.frombuffer(f.read(), np.uint8).reshape(count, 1, h, w)[:n]
    with gzip.open(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        labels = np.frombuffer(f.read(), np.uint8)[:n].astype(np.int64)
    return images, labels


def normalize(images, norm):
    """(pixel/255 - mean) / std in float32, as the engine's loader."""
    x = images.astype(np.float32) / np.float32(255.0)
    if norm.get("mean"):
        c = x.shape[1]
        mean = np.array(norm["mean"] * (c if len(norm["mean"]) == 1 else 1), np.float32).reshape(1, c, 1, 1)
        std = np.array(norm["std"] * (c if len(norm["std"]) == 1 else 1), np.float32).reshape(1, c, 1, 1)
        x = (x - mean) / std
    return x.astype(np.float32)


def model_normalization(run):
    _, meta = safetensors_np.load(os.path.join(run, "model.safetensors"))
    return json.loads(meta["normalization"])


def engine_logits(asap_predict, run, x, train_mode=False):
    """The engine's {"logits", maybe "aux_logits"} for the batch x (asap_predict)."""
    inp, outp = os.path.join(run, "predict_in.safetensors"), os.path.join(run, "predict_out.safetensors")
    safetensors_np.save(inp, {"x": x})
    subprocess.run([asap_predict, run, inp, outp] + (["--train-mode"] if train_mode else []), check=True)
    return safetensors_np.load(outp)[0]


def engine_test_accuracy(run):
    with open(os.path.join(run, "summary.json")) as f:
        return json.load(f)["test_accuracy"]
