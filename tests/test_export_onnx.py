#!/usr/bin/env python3
"""asap_export writes an ONNX model that the onnx checker accepts and that onnxruntime runs to
the engine's logits (every primitive at stride 1 and 2, see export_fixture.py) and test accuracy,
with a dynamic batch, a fixed batch and opsets 13 and 17.
Usage: test_export_onnx.py ASAP_RUN ASAP_PREDICT ASAP_EXPORT. onnx and onnxruntime come from the
venv that tools/install_interop_deps.sh makes (ASAP_ONNX_VENV, default build-onnx-venv/ at the
repository root); exit 77 (CTest SKIP) when neither this Python nor the venv has them."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def reexec_in_venv():
    venv = os.environ.get("ASAP_ONNX_VENV", os.path.join(HERE, "..", "build-onnx-venv"))
    py = os.path.join(venv, "bin", "python")
    if os.path.exists(py) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
        os.execv(py, [py] + sys.argv)
    print(f"SKIP: onnx/onnxruntime missing and no venv at {venv} (bash tools/install_interop_deps.sh)")
    sys.exit(77)


try:
    import onnx
    import onnxruntime as ort
except ImportError:
    reexec_in_venv()

import numpy as np

import export_fixture as fx

TOL = 1e-4


def export(asap_export, run, out, *args):
    subprocess.run([asap_export, run, "--out", out, *args], check=True, stdout=subprocess.DEVNULL)
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)  # also runs shape inference
    return model


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def check_run(run, asap_predict, asap_export):
    name = os.path.basename(run)
    path = os.path.join(run, "model.onnx")
    model = export(asap_export, run, path)
    assert model.opset_import[0].version == 13
    props = {p.key: p.value for p in model.metadata_props}
    norm = fx.model_normalization(run)
    assert props["num_classes"] == "10" and "mean" in norm
    assert np.allclose(eval(props["normalization_mean"]), norm["mean"]), props
    assert np.allclose(eval(props["normalization_std"]), norm["std"]), props
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    ops = {n.op_type for n in model.graph.node}
    for op in ("Conv", "BatchNormalization", "MaxPool", "AveragePool", "Slice", "Concat", "Add", "Gemm"):
        assert op in ops, (op, ops)
    assert all(a.i == 0 for n in model.graph.node if n.op_type == "AveragePool" for a in n.attribute
               if a.name == "count_include_pad")
    assert not any(i.name.startswith("auxiliary_head") for i in model.graph.initializer)

    images, labels = fx.test_images(os.path.join(os.path.dirname(run), "data"))
    x = fx.normalize(images, norm)
    eng = fx.engine_logits(asap_predict, run, x)["logits"]
    got = session(path).run(["logits"], {"input": x})[0]
    diff = float(np.abs(got - eng).max())
    print(f"{name}: onnxruntime vs engine logits, batch {len(x)}: max abs diff {diff:.3g}")
    assert diff <= TOL, diff
    got16 = session(path).run(["logits"], {"input": x[:16]})[0]  # the batch dimension is dynamic
    assert float(np.abs(got16 - eng[:16]).max()) <= TOL
    acc = float((got.argmax(1) == labels).mean())
    print(f"{name}: test accuracy onnxruntime {acc:.4f}, engine {fx.engine_test_accuracy(run):.4f}")
    assert len(set(got.argmax(1).tolist())) > 1, "the tiny run predicts one class: the accuracy check would be weak"
    assert abs(acc - fx.engine_test_accuracy(run)) < 1e-9

    fixed = os.path.join(run, "model_b8_op17.onnx")
    m17 = export(asap_export, run, fixed, "--batch", "8", "--opset", "17")
    assert m17.opset_import[0].version == 17
    assert m17.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 8
    got8 = session(fixed).run(["logits"], {"input": x[:8]})[0]
    assert float(np.abs(got8 - eng[:8]).max()) <= TOL


def main():
    asap_run, asap_predict, asap_export = sys.argv[1:4]
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for aux in (True, False):
            check_run(fx.make_run(tmp, asap_run, "aux" if aux else "noaux", aux), asap_predict, asap_export)
        # Bad command lines: exit 2; a folder without model.safetensors: exit 3.
        for args, code in ((["--batch", "x"], 2), (["--opset", "12"], 2)):
            rc = subprocess.run([asap_export, os.path.join(tmp, "aux"), *args], capture_output=True).returncode
            assert rc == code, (args, rc)
        rc = subprocess.run([asap_export, tmp], capture_output=True).returncode
        assert rc == 3, rc
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
