#!/usr/bin/env python3
"""run.tensorboard writes RUN/tensorboard/events.out.tfevents.*: every record's framing CRCs
(masked CRC-32C) check out, the file starts with the file_version event and holds the documented
scalars (docs/interop.md) with the values of metrics.jsonl; TensorBoard's own reader loads it
when the tensorboard package is there (the interop venv). RUN/alphas.jsonl has one line per
search epoch with alpha/Phi/alive matrices, and tools/plot_phi.py draws a PNG from it.
Usage: test_export_tensorboard.py ASAP_RUN (python3 only; numpy and matplotlib not needed)."""
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(blob):
    pos = 0
    while pos < len(blob):
        (n,) = struct.unpack_from("<Q", blob, pos)
        (len_crc,) = struct.unpack_from("<I", blob, pos + 8)
        if len_crc != masked(blob[pos:pos + 8]):
            raise ValueError(f"length CRC mismatch at byte {pos}")
        data = blob[pos + 12:pos + 12 + n]
        (data_crc,) = struct.unpack_from("<I", blob, pos + 12 + n)
        if data_crc != masked(data):
            raise ValueError(f"data CRC mismatch at byte {pos}")
        yield data
        pos += 16 + n


def fields(buf):
    """(field, wire type, value) of one protobuf message; length-delimited values as bytes."""
    pos = 0

    def varint():
        nonlocal pos
        v = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v

    while pos < len(buf):
        key = varint()
        f, w = key >> 3, key & 7
        if w == 0:
            yield f, w, varint()
        elif w == 1:
            yield f, w, struct.unpack_from("<d", buf, pos)[0]
            pos += 8
        elif w == 5:
            yield f, w, struct.unpack_from("<f", buf, pos)[0]
            pos += 4
        elif w == 2:
            n = varint()
            yield f, w, buf[pos:pos + n]
            pos += n
        else:
            raise ValueError(f"wire type {w}")


def decode_event(data):
    ev = {"scalars": {}}
    for f, _, v in fields(data):
        if f == 1:
            ev["wall_time"] = v
        elif f == 2:
            ev["step"] = v
        elif f == 3:
            ev["file_version"] = v.decode()
        elif f == 5:
            for vf, _, value in fields(v):
                if vf == 1:
                    d = {ff: vv for ff, _, vv in fields(value)}
                    ev["scalars"][d[1].decode()] = d[2]
    return ev


def make_run(tmp, asap_run):
    data = os.path.join(tmp, "data")
    subprocess.run([sys.executable, os.path.join(HERE, "make_tiny_idx.py"), data, "256", "100", "16"], check=True)
    cfg = os.path.join(tmp, "tb.yaml")
    with open(cfg, "w") as f:
        f.write(f"""data: {{root: {data}, batch_size: 32, eval_batch_size: 50}}
search:
  epochs: 3
  network: {{C: 4, layers: 3}}
  alphas: {{lr: 0.05}}
  annealer: {{warmup_epochs: 1, T0: 1.0, beta: 0.5}}
train: {{epochs: 2, batch_size: 32, network: {{C: 4, layers: 3}}}}
run: {{seed: 3, threads: 2, progress: false, plots: false, tensorboard: true}}
""")
    out = os.path.join(tmp, "run")
    subprocess.run([asap_run, cfg, "--out", out], check=True, stdout=subprocess.DEVNULL)
    return out


def check_events(run):
    files = glob.glob(os.path.join(run, "tensorboard", "events.out.tfevents.*"))
    assert len(files) == 1, files
    blob = open(files[0], "rb").read()
    events = [decode_event(r) for r in records(blob)]
    assert events[0].get("file_version") == "brain.Event:2", events[0]
    # A flipped byte must be caught (the CRC check above is not vacuous).
    bad = bytearray(blob)
    bad[len(blob) // 2] ^= 0x40
    try:
        list(records(bytes(bad)))
        raise AssertionError("a corrupted event file passed the CRC check")
    except ValueError:
        pass

    by_stage = {"search": {}, "train": {}}
    for ev in events[1:]:
        stage = next(iter(ev["scalars"])).split("/")[0]
        by_stage[stage][ev["step"]] = ev["scalars"]
    metrics = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    prims = json.loads(open(os.path.join(run, "alphas.jsonl")).readline())["primitives"]
    for m in metrics:
        s = by_stage[m["stage"]][m["epoch"]]
        if m["stage"] == "search":
            pairs = {k: k for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "T", "theta", "sparsity",
                                    "epoch_seconds", "peak_mem_mb", "reserved_mb", "rss_mb")}
            for cell in ("normal", "reduce"):
                alive = sum(s[f"search/alive_ops/{cell}/{op}"] for op in prims)
                assert alive == m["alive_ops"][cell], (cell, alive, m)
                phi = sum(s[f"search/phi_mean/{cell}/{op}"] for op in prims)
                assert abs(phi - 1.0) < 1e-4, phi  # Phi sums to 1 on every edge
        else:
            pairs = {"train_loss": "train_loss", "train_acc": "train_acc", "val_loss": "test_loss",
                     "val_acc": "test_acc", "lr": "lr", "drop_path": "drop_path", "epoch_seconds": "epoch_seconds",
                     "peak_mem_mb": "peak_mem_mb", "reserved_mb": "reserved_mb", "rss_mb": "rss_mb"}
        for key, tag in pairs.items():
            want, got = m[key], s[f"{m['stage']}/{tag}"]
            assert abs(got - want) <= 1e-6 * max(1.0, abs(want)), (tag, got, want)
    n_tags = len(by_stage["search"][0]) + len(by_stage["train"][0])
    print(f"{len(events)} events, CRCs valid, {n_tags} tags at epoch 0 match metrics.jsonl")
    return files[0], by_stage


def check_with_tensorboard(run, by_stage):
    code = ("import sys\n"
            "from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n"
            "acc = EventAccumulator(sys.argv[1]); acc.Reload()\n"
            "print(len(acc.Tags()['scalars']), acc.Scalars('train/test_acc')[-1].value)\n")
    venv = os.environ.get("ASAP_ONNX_VENV", os.path.join(HERE, "..", "build-onnx-venv"))
    for py in (sys.executable, os.path.join(venv, "bin", "python")):
        if os.path.exists(py) and subprocess.run([py, "-c", "import tensorboard"], capture_output=True).returncode == 0:
            out = subprocess.run([py, "-c", code, os.path.join(run, "tensorboard")], check=True, capture_output=True,
                                 text=True).stdout.split()
            tags = {t for steps in by_stage.values() for s in steps.values() for t in s}
            assert int(out[0]) == len(tags), (out, len(tags))
            last = by_stage["train"][max(by_stage["train"])]["train/test_acc"]
            assert abs(float(out[1]) - last) < 1e-6, (out, last)
            print(f"tensorboard's EventAccumulator reads {out[0]} scalar tags")
            return
    print("NOTE: the tensorboard package is absent: only our own reader checked the file")


def check_alphas(run):
    lines = [json.loads(l) for l in open(os.path.join(run, "alphas.jsonl"))]
    search = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if '"search"' in l]
    assert [l["epoch"] for l in lines] == [m["epoch"] for m in search], lines
    for l in lines:
        for cell in ("normal", "reduce"):
            phi, alpha, alive = l["phi"][cell], l["alpha"][cell], l["alive"][cell]
            assert len(phi) == len(alpha) == len(alive) == 14 and all(len(r) == len(l["primitives"]) for r in phi)
            for prow, arow in zip(phi, alive):
                assert abs(sum(prow) - 1.0) < 1e-6, prow
                assert all(p == 0.0 for p, a in zip(prow, arow) if not a), (prow, arow)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("NOTE: python3-matplotlib is absent: plot_phi.py not run")
        return
    png = os.path.join(run, "phi.png")
    subprocess.run([sys.executable, os.path.join(HERE, "..", "tools", "plot_phi.py"), run, "--out", png], check=True)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    print(f"alphas.jsonl: {len(lines)} epochs; plot_phi.py wrote a PNG")


def main():
    keep = os.environ.get("ASAP_KEEP_RUN")  # a folder to keep the run in (to look at the plot)
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(keep or tmp, sys.argv[1])
        _, by_stage = check_events(run)
        check_with_tensorboard(run, by_stage)
        check_alphas(run)
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
