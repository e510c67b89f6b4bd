#!/usr/bin/env python3
"""RUN/model.safetensors loads into PyTorch (tools/pytorch/asap_torch.py) with strict DARTS names
and gives the engine's logits (eval mode; training mode for the auxiliary head) and test accuracy.
Usage: test_export_torch.py ASAP_RUN ASAP_PREDICT. Exit 77 (CTest SKIP) without python3-torch."""
import os
import sys
import tempfile

try:
    import torch
except ImportError:
    print("SKIP: python3-torch is not installed (apt-get install python3-torch)")
    sys.exit(77)

import numpy as np

import export_fixture as fx
import asap_torch

TOL = 1e-4


def check_run(run, asap_predict, auxiliary):
    model = asap_torch.load_run(run)
    keys = set(model.state_dict())
    # The DARTS names (spot checks of each kind of module) and the auxiliary head's presence.
    for k in ("stem.0.weight", "stem.1.running_var", "cells.0.preprocess0.op.1.weight", "cells.0._ops.3.op.7.bias",
              "cells.0._ops.7.op.3.running_mean", "cells.1._ops.2.conv_2.weight", "cells.3.preprocess0.conv_1.weight",
              "classifier.weight"):
        assert k in keys, k
    assert any(k.startswith("auxiliary_head.features.5.") for k in keys) == auxiliary

    images, labels = fx.test_images(os.path.join(os.path.dirname(run), "data"))
    x = fx.normalize(images, model.normalization)
    ref = asap_torch.normalize(images, model.normalization).numpy()
    assert np.array_equal(x, ref), "asap_torch.normalize differs from the engine's normalisation"

    batch = x[:16]
    eng = fx.engine_logits(asap_predict, run, batch)
    with torch.no_grad():
        got = model(torch.from_numpy(batch)).numpy()
    diff = float(np.abs(got - eng["logits"]).max())
    print(f"{os.path.basename(run)}: eval logits max |torch - engine| = {diff:.3g}")
    assert diff <= TOL, diff

    # Training mode (BN on batch statistics, no drop-path): the only mode with auxiliary logits.
    # A fresh copy: a training-mode forward updates the running statistics.
    eng_t = fx.engine_logits(asap_predict, run, batch, train_mode=True)
    trained = asap_torch.load_run(run).train()
    trained.drop_path_prob = 0.0
    with torch.no_grad():
        logits_t, aux_t = trained.forward_all(torch.from_numpy(batch))
    diff_t = float(np.abs(logits_t.numpy() - eng_t["logits"]).max())
    print(f"{os.path.basename(run)}: train-mode logits max diff = {diff_t:.3g}")
    assert diff_t <= TOL, diff_t
    if auxiliary:
        diff_a = float(np.abs(aux_t.numpy() - eng_t["aux_logits"]).max())
        print(f"{os.path.basename(run)}: auxiliary logits max diff = {diff_a:.3g}")
        assert diff_a <= TOL, diff_a
    else:
        assert aux_t is None and "aux_logits" not in eng_t

    # Test accuracy on the run's whole test subset equals the engine's (summary.json).
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    acc = float((pred == labels).mean())
    assert len(set(pred.tolist())) > 1, "the tiny run predicts one class: the accuracy check would be weak"
    print(f"{os.path.basename(run)}: test accuracy torch {acc:.4f}, engine {fx.engine_test_accuracy(run):.4f}")
    assert abs(acc - fx.engine_test_accuracy(run)) < 1e-9


def main():
    asap_run, asap_predict = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        for aux in (True, False):
            check_run(fx.make_run(tmp, asap_run, "aux" if aux else "noaux", aux), asap_predict, aux)
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
