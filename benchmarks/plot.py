#!/usr/bin/python3
"""Benchmark and run pictures (matplotlib from Debian: apt-get install python3-matplotlib).

  plot.py bench FILE.jsonl [--out DIR]   step time vs sparsity, one line per engine (and thread
                                         count), from the JSON lines compare.sh / asap_bench /
                                         pytorch_reference.py print; several rounds -> median.
  plot.py run RUN_DIR [--out DIR]        from RUN_DIR/metrics.jsonl: the search stage's epoch time
                                         and alive ops (normal / reduce) per epoch, and the train
                                         stage's epoch time with train / test accuracy; a run with
                                         one stage (--stage search|train) gets that stage's PNG.
  plot.py report REPORT.json [--out DIR] from asap_report's report.json: search epoch time against
                                         sparsity, one line per run (coloured by group).
PNGs go to --out (default: next to the input).
"""
import argparse
import collections
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_jsonl(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or not line.startswith("{"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON: {e}")
    if not rows:
        sys.exit(f"{path}: no JSON lines")
    return rows


def plot_bench(path, out):
    rows = read_jsonl(path)
    series = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in rows:
        series[(r["engine"], r.get("threads", 1))][float(r["sparsity"])].append(float(r["step_ms"]))
    cfg = rows[0]
    fig, ax = plt.subplots(figsize=(6, 4))
    for (eng, thr), pts in sorted(series.items()):
        xs = sorted(pts)
        ax.plot(xs, [statistics.median(pts[x]) for x in xs], marker="o", label=f"{eng}, {thr} thr")
    ax.set_xlabel("sparsity (fraction of the 7 non-none ops pruned)")
    ax.set_ylabel("search step (ms, median)")
    ax.set_yscale("log")
    ax.set_title(f"search step: C={cfg.get('C')} layers={cfg.get('layers')} batch={cfg.get('batch')} "
                 f"hw={cfg.get('hw')}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png = os.path.join(out, os.path.splitext(os.path.basename(path))[0] + "_step_vs_sparsity.png")
    fig.savefig(png, dpi=120)
    print(png)


def twin_legend(ax1, ax2, loc):
    """One legend for the bars on ax1 and the lines on its twin ax2."""
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, loc=loc, fontsize=8)


def plot_search(rows, run_dir, out):
    ep = [r["epoch"] for r in rows]
    secs = [r.get("epoch_seconds", r.get("seconds", 0.0)) for r in rows]
    fig, ax1 = plt.subplots(figsize=(6, 4))
    ax1.bar(ep, secs, color="tab:gray", alpha=0.6, label="epoch time (s)")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("epoch time (s)")
    ax2 = ax1.twinx()
    for kind, color in (("normal", "tab:blue"), ("reduce", "tab:orange")):
        vals = [r.get("alive_ops", {}).get(kind) for r in rows]
        if any(v is not None for v in vals):
            ax2.plot(ep, vals, marker="o", color=color, label=f"alive ops ({kind})")
    ax2.set_ylabel("alive ops (all edges)")
    ax2.set_ylim(bottom=0)
    twin_legend(ax1, ax2, "upper right")
    ax1.set_title(f"search run: {os.path.basename(os.path.abspath(run_dir))}", fontsize=9)
    fig.tight_layout()
    png = os.path.join(out, "epoch_time_alive_ops.png")
    fig.savefig(png, dpi=120)
    print(png)


def plot_train(rows, run_dir, out):
    ep = [r["epoch"] + 1 for r in rows]
    secs = [r.get("epoch_seconds", r.get("seconds", 0.0)) for r in rows]
    fig, ax1 = plt.subplots(figsize=(6, 4))
    ax1.bar(ep, secs, color="tab:gray", alpha=0.6, label="epoch time (s)")
    ax1.set_xlabel("train epoch")
    ax1.set_xticks(ep)
    ax1.set_ylabel("epoch time (s)")
    ax2 = ax1.twinx()
    ax2.plot(ep, [r.get("train_acc") for r in rows], marker="o", color="tab:blue", label="train accuracy")
    tested = [(e, r["val_acc"]) for e, r in zip(ep, rows) if "val_acc" in r]
    if tested:
        ax2.plot(*zip(*tested), marker="s", color="tab:green", label="test accuracy")
    ax2.set_ylabel("accuracy")
    twin_legend(ax1, ax2, "lower right")
    ax1.set_title(f"train stage: {os.path.basename(os.path.abspath(run_dir))}", fontsize=9)
    fig.tight_layout()
    png = os.path.join(out, "train_epochs.png")
    fig.savefig(png, dpi=120)
    print(png)


def plot_run(run_dir, out):
    rows = [r for r in read_jsonl(os.path.join(run_dir, "metrics.jsonl")) if "epoch" in r]
    search = [r for r in rows if r.get("stage", "search") == "search"]
    train = [r for r in rows if r.get("stage") == "train"]
    if not search and not train:
        sys.exit(f"{run_dir}/metrics.jsonl: no search or train epoch lines")
    if search:
        plot_search(search, run_dir, out)
    if train:
        plot_train(train, run_dir, out)


def plot_report(path, out):
    with open(path) as f:
        rep = json.load(f)
    runs = [r for r in rep.get("runs", []) if r.get("search_epochs")]
    if not runs:
        sys.exit(f"{path}: no run has search epochs")
    groups = sorted({r["group"] for r in runs})
    colors = {g: plt.cm.tab10(i % 10) for i, g in enumerate(groups)}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    seen = set()
    for r in runs:
        sp = [e[0] for e in r["search_epochs"]]
        secs = [e[1] for e in r["search_epochs"]]
        label = r["group"] if r["group"] not in seen else None
        seen.add(r["group"])
        ax.plot(sp, secs, marker="o", ms=3, lw=1, color=colors[r["group"]], alpha=0.8, label=label)
    ax.set_xlabel("sparsity (pruned ops / all ops) at epoch end")
    ax.set_ylabel("search epoch time (s)")
    ax.set_title(f"search epoch time vs sparsity, {len(runs)} runs", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = os.path.join(out, "search_time_vs_sparsity.png")
    fig.savefig(png, dpi=120)
    print(png)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("file")
    b.add_argument("--out")
    r = sub.add_parser("run")
    r.add_argument("run_dir")
    r.add_argument("--out")
    rp = sub.add_parser("report")
    rp.add_argument("file")
    rp.add_argument("--out")
    a = p.parse_args()
    if a.cmd == "report":
        out = a.out or os.path.dirname(os.path.abspath(a.file))
        os.makedirs(out, exist_ok=True)
        plot_report(a.file, out)
    elif a.cmd == "bench":
        out = a.out or os.path.dirname(os.path.abspath(a.file))
        os.makedirs(out, exist_ok=True)
        plot_bench(a.file, out)
    else:
        out = a.out or a.run_dir
        os.makedirs(out, exist_ok=True)
        plot_run(a.run_dir, out)


if __name__ == "__main__":
    main()
