"""The evaluation network of an asap-engine run folder in PyTorch.

Builds quark0/darts NetworkCIFAR (cnn/model.py, cnn/operations.py) for the run's genotype and
network settings (from the metadata of RUN/model.safetensors) and loads the weights with strict
names, so the state_dict keys are DARTS's own. Two generalisations of the DARTS code, both as in
the engine: the stem takes `in_channels` and `stem_multiplier`, and the auxiliary head adapts its
pooling and second convolution to the feature size (DARTS assumes 8x8) and averages what remains.

    import sys; sys.path.insert(0, "tools/pytorch")
    import asap_torch
    model = asap_torch.load_run("runs/quickstart-...")      # eval mode
    logits = model(asap_torch.normalize(images_uint8, model.normalization))
"""
import json
import os
import re
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402


def parse_genotype(text):
    """DARTS Genotype(...) text -> dict with normal, normal_concat, reduce, reduce_concat."""
    out = {}
    for key in ("normal", "reduce"):
        m = re.search(key + r"\s*=\s*[\[(](.*?)[\])]\s*,\s*" + key + "_concat", text, re.S)
        out[key] = [(op, int(i)) for op, i in re.findall(r"\(\s*['\"](\w+)['\"]\s*,\s*(\d+)\s*\)", m.group(1))]
        c = re.search(key + r"_concat\s*=\s*(range\(\s*(\d+)\s*,\s*(\d+)\s*\)|[\[(]([\d,\s]*)[\])])", text)
        if c.group(2) is not None:
            out[key + "_concat"] = list(range(int(c.group(2)), int(c.group(3))))
        else:
            out[key + "_concat"] = [int(v) for v in c.group(4).replace(",", " ").split()]
    return out


class ReLUConvBN(nn.Module):
    def __init__(self, c_in, c_out, k, stride, padding):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, k, stride, padding, bias=False),
                                nn.BatchNorm2d(c_out))

    def forward(self, x):
        return self.op(x)


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class SepConv(nn.Module):
    def __init__(self, c, k, stride, padding):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False), nn.Conv2d(c, c, k, stride, padding, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c),
            nn.ReLU(inplace=False), nn.Conv2d(c, c, k, 1, padding, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return self.op(x)


class DilConv(nn.Module):
    def __init__(self, c, k, stride, padding, dilation):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False), nn.Conv2d(c, c, k, stride, padding, dilation=dilation, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return self.op(x)


class Conv7x1_1x7(nn.Module):
    """DARTS conv_7x1_1x7 (AmoebaNet): ReLU, 1x7 conv, 7x1 conv, BN; state_dict names op.1/op.2/op.3."""

    def __init__(self, c, stride):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(c, affine=True),
        )

    def forward(self, x):
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x):
        return x


def make_op(name, c, stride):
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return Identity() if stride == 1 else FactorizedReduce(c, c)
    sep = {"sep_conv_3x3": (3, 1), "sep_conv_5x5": (5, 2), "sep_conv_7x7": (7, 3)}
    if name in sep:
        return SepConv(c, sep[name][0], stride, sep[name][1])
    dil = {"dil_conv_3x3": (3, 2), "dil_conv_5x5": (5, 4)}
    if name in dil:
        return DilConv(c, dil[name][0], stride, dil[name][1], 2)
    if name == "conv_7x1_1x7":
        return Conv7x1_1x7(c, stride)
    raise ValueError(f"unknown primitive {name!r}")


class Cell(nn.Module):
    def __init__(self, genotype, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        genes = genotype["reduce" if reduction else "normal"]
        self._concat = genotype["reduce_concat" if reduction else "normal_concat"]
        self._indices = [i for _, i in genes]
        self._ops = nn.ModuleList([make_op(op, c, 2 if reduction and i < 2 else 1) for op, i in genes])
        self.multiplier = len(self._concat)

    def forward(self, s0, s1, drop_prob=0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(len(self._ops) // 2):
            h = []
            for j in (2 * i, 2 * i + 1):
                y = self._ops[j](states[self._indices[j]])
                if self.training and drop_prob > 0 and not isinstance(self._ops[j], Identity):
                    keep = 1.0 - drop_prob
                    y = y / keep * torch.bernoulli(torch.full((y.size(0), 1, 1, 1), keep, device=y.device))
                h.append(y)
            states.append(h[0] + h[1])
        return torch.cat([states[i] for i in self._concat], dim=1)


class AuxiliaryHead(nn.Module):
    """AuxiliaryHeadCIFAR; for a feature size other than 8 the pool and the 2x2 conv shrink to fit
    (as in the engine) and a global average replaces DARTS's view (identical for 8x8)."""

    def __init__(self, c, spatial, num_classes):
        super().__init__()
        if spatial >= 5:
            pool, stride, pooled = 5, 3, (spatial - 5) // 3 + 1
        else:
            pool, stride, pooled = spatial, 1, 1
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), nn.AvgPool2d(pool, stride=stride, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, min(2, pooled), bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class NetworkCIFAR(nn.Module):
    def __init__(self, C, num_classes, layers, auxiliary, genotype, in_channels=3, stem_multiplier=3,
                 input_size=32, reduction_cells=None):
        super().__init__()
        self._layers = layers
        self._auxiliary = auxiliary
        self.drop_path_prob = 0.0
        reduction_cells = [layers // 3, 2 * layers // 3] if reduction_cells is None else list(reduction_cells)
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev, spatial = False, input_size
        for i in range(layers):
            reduction = i in reduction_cells
            if reduction:
                c_curr *= 2
                spatial = (spatial + 1) // 2
            cell = Cell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == 2 * layers // 3:
                c_aux, spatial_aux = c_p, spatial
        if auxiliary:
            self.auxiliary_head = AuxiliaryHead(c_aux, spatial_aux, num_classes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward_all(self, x):
        """(logits, aux_logits); aux_logits is None outside training mode or without the head."""
        logits_aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == 2 * self._layers // 3 and self._auxiliary and self.training:
                logits_aux = self.auxiliary_head(s1)
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1)), logits_aux

    def forward(self, x):
        return self.forward_all(x)[0]


def load_run(run_dir, model_file="model.safetensors"):
    """The trained network of a run folder, in eval mode; .normalization = {"mean": [...], "std": [...]}."""
    tensors, meta = safetensors_np.load(os.path.join(run_dir, model_file))
    if not meta.get("format", "").startswith("asap-engine/darts-NetworkCIFAR/"):
        raise ValueError(f"{run_dir}/{model_file}: not an asap-engine model file")
    net = json.loads(meta["network"])
    model = NetworkCIFAR(net["C"], net["num_classes"], net["layers"], net["auxiliary"], parse_genotype(meta["genotype"]),
                         in_channels=net["in_channels"], stem_multiplier=net["stem_multiplier"],
                         input_size=net["input_size"], reduction_cells=net["reduction_cells"])
    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)  # num_batches_tracked: filled in by BatchNorm when absent
    model.normalization = json.loads(meta["normalization"])
    model.genotype_text = meta["genotype"]
    return model.eval()


def normalize(images, norm):
    """uint8 NCHW images -> the float32 input the network was trained on: (pixel/255 - mean) / std."""
    x = torch.as_tensor(np.array(images), dtype=torch.float32) / 255.0
    if norm.get("mean"):
        c = x.shape[1]
        mean = torch.tensor(norm["mean"] * (c if len(norm["mean"]) == 1 else 1)).view(1, c, 1, 1)
        std = torch.tensor(norm["std"] * (c if len(norm["std"]) == 1 else 1)).view(1, c, 1, 1)
        x = (x - mean) / std
    return x
