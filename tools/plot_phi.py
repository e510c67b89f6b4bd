#!/usr/bin/env python3
"""Draws the Phi trajectories of one cell type from RUN/alphas.jsonl: one panel per edge, one
line per op (Phi after each search epoch; a pruned op drops to 0 and stays there).

Usage: plot_phi.py RUN [--cell normal|reduce] [--out FILE.png]   (default RUN/phi_<cell>.png)
Needs python3-matplotlib."""
import argparse
import json
import math
import os
import sys


def edge_label(e):
    # Edges are ordered node by node: node i has inputs 0, 1 (cell inputs) and 2.. (earlier nodes).
    node, first = 0, 0
    while e >= first + node + 2:
        first += node + 2
        node += 1
    return f"node {node} <- {e - first}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--cell", choices=("normal", "reduce"), default="normal")
    ap.add_argument("--out")
    a = ap.parse_args()
    path = os.path.join(a.run, "alphas.jsonl")
    lines = [json.loads(l) for l in open(path) if l.strip()]
    if not lines:
        sys.exit(f"{path}: no epochs logged")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prims = lines[0]["primitives"]
    epochs = [l["epoch"] for l in lines]
    edges = len(lines[0]["phi"][a.cell])
    cols = 4
    rows = math.ceil(edges / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), sharex=True, sharey=True, squeeze=False)
    for e in range(edges):
        ax = axes[e // cols][e % cols]
        for o, name in enumerate(prims):
            ax.plot(epochs, [l["phi"][a.cell][e][o] for l in lines], marker=".", label=name)
        ax.set_title(edge_label(e), fontsize=9)
        ax.set_ylim(0, 1.05)
    for e in range(edges, rows * cols):
        axes[e // cols][e % cols].axis("off")
    axes[0][0].legend(fontsize=6, loc="upper right")
    fig.supxlabel("search epoch")
    fig.supylabel("Phi")
    fig.suptitle(f"Phi per op, {a.cell} cell ({a.run})", fontsize=10)
    fig.tight_layout()
    out = a.out or os.path.join(a.run, f"phi_{a.cell}.png")
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
