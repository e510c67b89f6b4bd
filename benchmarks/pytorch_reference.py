#!/usr/bin/env python3
"""PyTorch reference for the search-step benchmark of shared/BENCHMARK.md.

Same workload, flags and JSON keys as tools/asap_bench ("engine": "pytorch"):
  - DARTS search network: stem 3x3 conv (no bias) to 3*C + BN, `layers` cells with reductions at
    layers//3 and 2*layers//3, 4 nodes, 14 edges, 8 primitives, BN affine off, global average
    pool, linear to 10 classes;
  - one search step = weight step (forward + backward on the train batch, SGD lr 0.025 momentum
    0.9 wd 3e-4, gradient-norm clip 5; alphas frozen) + alpha step (forward + backward on the val
    batch, Adam lr 3e-4 betas (0.5, 0.999) wd 1e-3; only the alpha gradients are computed, as in
    asap's first-order step with alpha_step_skips_weight_grads = true);
  - sparsity s: on every edge `none` is pruned, and so are the first round(7*s) ops of
    sep_conv_5x5, dil_conv_5x5, sep_conv_3x3, dil_conv_3x3, avg_pool_3x3, max_pool_3x3,
    skip_connect. Pruned ops are never built and never run; the edge weights are the softmax of
    alpha / T over the alive ops only.
  - one warm-up step per level, then the mean wall time of `steps` timed steps.

--net eval (issue 15, item 3): one training step of the evaluation network instead, as
`asap_bench --net eval`: quark0/darts NetworkCIFAR from tools/pytorch/asap_torch.py (the class
our model files load into) for --genotype (DARTS_V2 or Genotype(...) text), auxiliary head on
(weight 0.4), drop path 0.1 (the engine's drop_path_prob_at(5, 10, 0.2)), forward, backward,
gradient-norm clip 5, SGD lr 0.025 momentum 0.9 wd 3e-4; prints "net": "eval" and "genotype".

peak_mem_mb is the process's peak resident set size (ru_maxrss), which is not the same measure as
asap's allocator peak: compare step_ms, not memory, across engines.

Usage (same flags as asap_bench):
  /usr/bin/python3 benchmarks/pytorch_reference.py --device cpu --C 8 --layers 5 --batch 32 \
      --hw 28 --cin 1 --threads 2 --steps 3 --sparsity 0,0.43,0.71,0.86
"""
import argparse
import json
import resource
import time

import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# quark0/darts cnn/genotypes.py DARTS_V2; other cells are passed as Genotype(...) text.
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
            "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
            "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
            "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
            "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")

PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
PRUNE_ORDER = ["sep_conv_5x5", "dil_conv_5x5", "sep_conv_3x3", "dil_conv_3x3", "avg_pool_3x3",
               "max_pool_3x3", "skip_connect"]


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin, cout, k, stride, pad):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(cin, cout, k, stride, pad, bias=False),
                         nn.BatchNorm2d(cout, affine=False))


class DilConv(nn.Sequential):
    def __init__(self, cin, cout, k, stride, pad, dil):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(cin, cin, k, stride, pad, dilation=dil, groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout, affine=False))


class SepConv(nn.Sequential):
    def __init__(self, cin, cout, k, stride, pad):
        super().__init__(DilConv(cin, cin, k, stride, pad, 1), DilConv(cin, cout, k, 1, pad, 1))


class FactorizedReduce(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.c1 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.c2 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, affine=False)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.c1(x), self.c2(x[:, :, 1:, 1:])], dim=1))


class PoolBN(nn.Module):
    def __init__(self, kind, c, stride):
        super().__init__()
        self.pool = (nn.MaxPool2d(3, stride, 1) if kind == "max"
                     else nn.AvgPool2d(3, stride, 1, count_include_pad=False))
        self.bn = nn.BatchNorm2d(c, affine=False)

    def forward(self, x):
        return self.bn(self.pool(x))


def make_op(name, c, stride):
    if name == "max_pool_3x3":
        return PoolBN("max", c, stride)
    if name == "avg_pool_3x3":
        return PoolBN("avg", c, stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name == "sep_conv_3x3":
        return SepConv(c, c, 3, stride, 1)
    if name == "sep_conv_5x5":
        return SepConv(c, c, 5, stride, 2)
    if name == "dil_conv_3x3":
        return DilConv(c, c, 3, stride, 2, 2)
    if name == "dil_conv_5x5":
        return DilConv(c, c, 5, stride, 4, 2)
    raise ValueError(name)


class MixedOp(nn.Module):
    """Holds only the alive, executed ops (indices into PRIMITIVES)."""

    def __init__(self, c, stride, exec_ops):
        super().__init__()
        self.exec_ops = exec_ops
        self.ops = nn.ModuleList([make_op(PRIMITIVES[k], c, stride) for k in exec_ops])

    def forward(self, x, w):
        out = None
        for i, op in enumerate(self.ops):
            y = w[i] * op(x)
            out = y if out is None else out + y
        return out


class Cell(nn.Module):
    def __init__(self, nodes, c_pp, c_p, c, reduction, reduction_prev, exec_ops):
        super().__init__()
        self.reduction, self.nodes = reduction, nodes
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self.edges = nn.ModuleList()
        for i in range(nodes):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self.edges.append(MixedOp(c, stride, exec_ops))

    def forward(self, s0, s1, weights):
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for i in range(self.nodes):
            acc = None
            for j in range(2 + i):
                y = self.edges[e](states[j], weights[e])
                acc = y if acc is None else acc + y
                e += 1
            states.append(acc)
        return torch.cat(states[2:], dim=1)


class SearchNetwork(nn.Module):
    def __init__(self, C, layers, cin, exec_ops, nodes=4, stem_mult=3, classes=10):
        super().__init__()
        self.exec_ops = exec_ops
        self.edges = nodes * (nodes + 3) // 2
        c_curr = stem_mult * C
        self.stem = nn.Sequential(nn.Conv2d(cin, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr, affine=False))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(Cell(nodes, c_pp, c_p, c_curr, reduction, reduction_prev, exec_ops))
            reduction_prev = reduction
            c_pp, c_p = c_p, nodes * c_curr
        self.classifier = nn.Linear(c_p, classes)
        # alphas over all 8 primitives; pruned entries are masked out of the softmax.
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(self.edges, len(PRIMITIVES)))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(self.edges, len(PRIMITIVES)))
        self.temperature = 1.0

    def arch_parameters(self):
        return [self.alpha_normal, self.alpha_reduce]

    def weights(self):
        return [p for n, p in self.named_parameters() if not n.startswith("alpha_")]

    def edge_weights(self, alpha):
        idx = torch.tensor(self.exec_ops, dtype=torch.long)
        return F.softmax(alpha.index_select(1, idx) / self.temperature, dim=-1)

    def forward(self, x):
        wn = self.edge_weights(self.alpha_normal)
        wr = self.edge_weights(self.alpha_reduce)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, wr if cell.reduction else wn)
        out = F.adaptive_avg_pool2d(s1, 1).flatten(1)
        return self.classifier(out)


def alive_ops(s):
    n_pruned = min(7, int(round(7.0 * s)))
    dead = {"none"} | set(PRUNE_ORDER[:n_pruned])
    ops = [k for k, name in enumerate(PRIMITIVES) if name not in dead]
    return ops


def time_steps(step, steps):
    """One warm-up call, then (mean ms of `steps` timed calls, peak resident MB of the process)."""
    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    ms = (time.perf_counter() - t0) * 1000.0 / steps
    return ms, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_level(a, s):
    torch.manual_seed(a.seed)
    exec_ops = alive_ops(s)
    net = SearchNetwork(a.C, a.layers, a.cin, exec_ops)
    net.train()
    w_opt = torch.optim.SGD(net.weights(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    g = torch.Generator().manual_seed(a.seed + 1)
    xt = torch.randn(a.batch, a.cin, a.hw, a.hw, generator=g)
    yt = torch.randint(0, 10, (a.batch,), generator=g)
    xv = torch.randn(a.batch, a.cin, a.hw, a.hw, generator=g)
    yv = torch.randint(0, 10, (a.batch,), generator=g)
    weights, alphas = net.weights(), net.arch_parameters()

    def step():
        # weight step: alphas frozen
        for p in alphas:
            p.requires_grad_(False)
        w_opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xt), yt)
        loss.backward()
        nn.utils.clip_grad_norm_(weights, 5.0)
        w_opt.step()
        for p in alphas:
            p.requires_grad_(True)
        # alpha step (first order): only the alpha gradients are computed
        for p in weights:
            p.requires_grad_(False)
        a_opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xv), yv)
        loss.backward()
        a_opt.step()
        for p in weights:
            p.requires_grad_(True)

    ms, peak = time_steps(step, a.steps)
    return {"engine": "pytorch", "device": "cpu", "sparsity": s, "C": a.C, "layers": a.layers,
            "batch": a.batch, "hw": a.hw, "threads": a.threads, "step_ms": round(ms, 2),
            "peak_mem_mb": round(peak, 1)}


def run_eval(a):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "pytorch"))
    import asap_torch  # noqa: E402 (needs numpy, as the interop tools do)
    text = DARTS_V2 if a.genotype in ("DARTS_V2", "DARTS") else a.genotype
    if "Genotype(" not in text:
        raise SystemExit(f"--genotype: '{a.genotype}' is neither DARTS_V2 nor Genotype(...) text")
    torch.manual_seed(a.seed)
    net = asap_torch.NetworkCIFAR(a.C, 10, a.layers, True, asap_torch.parse_genotype(text),
                                  in_channels=a.cin, input_size=a.hw)
    net.train()
    net.drop_path_prob = 0.2 * 5 / 10
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    g = torch.Generator().manual_seed(a.seed + 1)
    x = torch.randn(a.batch, a.cin, a.hw, a.hw, generator=g)
    y = torch.randint(0, 10, (a.batch,), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        logits, aux = net.forward_all(x)
        loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()

    ms, peak = time_steps(step, a.steps)
    return {"engine": "pytorch", "device": "cpu", "net": "eval", "genotype": a.genotype, "C": a.C,
            "layers": a.layers, "batch": a.batch, "hw": a.hw, "threads": a.threads,
            "step_ms": round(ms, 2), "peak_mem_mb": round(peak, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hw", type=int, default=28)
    p.add_argument("--cin", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--sparsity", default="0,0.43,0.71,0.86")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--net", choices=["search", "eval"], default="search")
    p.add_argument("--genotype", default="DARTS_V2")
    p.add_argument("--cuda-graphs", default="off")  # accepted for flag parity; CPU only here
    a = p.parse_args()
    if a.device != "cpu":
        raise SystemExit("pytorch_reference.py: only --device cpu is implemented "
                         "(the Debian torch build has no CUDA)")
    torch.set_num_threads(a.threads)
    if a.net == "eval":
        print(json.dumps(run_eval(a)), flush=True)
        return
    levels = [float(v) for v in a.sparsity.split(",") if v]
    for s in levels:
        if not 0.0 <= s <= 1.0:
            raise SystemExit("--sparsity levels must lie in [0, 1]")
        if not alive_ops(s):
            raise SystemExit(f"sparsity {s}: no op left to run")
        print(json.dumps(run_level(a, s)), flush=True)


if __name__ == "__main__":
    main()
