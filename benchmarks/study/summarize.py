#!/usr/bin/env python3
"""Turns the study's asap_report output (report.json) into the tables of docs/study.md.

Usage: summarize.py OUT/report.json
Arms are read from the folder names run_study.sh writes: search-ARM/ (searches) and
train-CELL/ (two trainings of one cell). Prints markdown to stdout.
"""
import json
import os
import statistics
import sys


def mean_std(xs, digits=4):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def main(path):
    rep = json.load(open(path))
    runs = rep["runs"]
    by_folder = {}
    for r in runs:
        by_folder.setdefault(os.path.basename(os.path.dirname(r["dir"])), []).append(r)

    # Searches: cost and what they found.
    # Work, independent of machine load: each epoch costs about its share of alive ops at its start
    # (the previous epoch's end), so a dense epoch counts 1 ("dense-epoch equivalents").
    def dense_equivalents(r):
        eps = r.get("search_epochs") or []
        start = [0.0] + [sp for sp, _ in eps[:-1]]
        return sum(1.0 - sp for sp in start)

    print("| search arm | runs | search seconds | epochs | final sparsity | dense-epoch equivalents | fallback genes |")
    print("|---|---|---|---|---|---|---|")
    search_arms = sorted(k for k in by_folder if k.startswith("search-"))
    for k in search_arms:
        rs = by_folder[k]
        secs = [r.get("search_seconds") for r in rs]
        epochs = [len(r.get("search_epochs") or []) for r in rs]
        sparsity = [(r.get("search_epochs") or [[None]])[-1][0] for r in rs]
        fb = [r.get("fallback_genes") for r in rs]
        work = [dense_equivalents(r) for r in rs]
        print(f"| {k[len('search-'):]} | {len(rs)} | {mean_std(secs, 0)} | {', '.join(map(str, epochs))} | "
              f"{', '.join('-' if s is None else f'{s:.3f}' for s in sparsity)} | {mean_std(work, 2)} | "
              f"{', '.join(map(str, fb))} |")
    print()

    # Trainings: one row per arm (all its cells and seeds), then one per cell.
    arms = {}
    for k, rs in by_folder.items():
        if not k.startswith("train-"):
            continue
        rs = [r for r in rs if r.get("test_accuracy") is not None]  # finished trainings only
        if not rs:
            continue
        cell = k[len("train-"):]
        arm = cell.rsplit("-seed-", 1)[0] if "-seed-" in cell else cell.rsplit("-", 1)[0] if cell.startswith("random-") else cell
        arms.setdefault(arm, {})[cell] = rs
    print("| arm | cells | trainings | test accuracy (mean ± std over all trainings) | per-cell means | parameters | train seconds |")
    print("|---|---|---|---|---|---|---|")
    labels = {"asap": "ASAP search (ours)", "random": "random cells", "ASAP": "ASAP (published cell)",
              "DARTS_V2": "DARTS_V2 (published cell)", "constant-T": "ablation: constant T",
              "no-pruning": "ablation: no pruning (first-order DARTS)"}
    for arm in sorted(arms, key=lambda a: list(labels).index(a) if a in labels else len(labels)):
        cells = arms[arm]
        accs = [r["test_accuracy"] for rs in cells.values() for r in rs]
        per_cell = [statistics.mean([r["test_accuracy"] for r in rs]) for rs in cells.values()]
        params = sorted({r.get("parameters") for rs in cells.values() for r in rs})
        tsecs = [r.get("train_seconds") for rs in cells.values() for r in rs]
        print(f"| {labels.get(arm, arm)} | {len(cells)} | {len(accs)} | {mean_std(accs)} | "
              f"{', '.join(f'{a:.4f}' for a in sorted(per_cell))} | "
              f"{', '.join(str(p) for p in params)} | {mean_std(tsecs, 0)} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
