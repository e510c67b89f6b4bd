#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ and the dictionaries fuzz/<target>.dict.

Seeds are small valid files plus the malformed variants the readers must reject (wrong magic,
truncated, trailing bytes, bad offsets, bad labels, syntax errors). Deterministic: rerunning it
rewrites the same files. Usage: python3 fuzz/make_corpus.py
"""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------------ IDX (mode byte + payload)
def idx_images(n, rows, cols, magic=0x803):
    return struct.pack(">IIII", magic, n, rows, cols) + bytes((7 * i + p) % 256 for i in range(n) for p in range(rows * cols))


def idx_labels(n, magic=0x801, classes=10):
    return struct.pack(">II", magic, n) + bytes(i % classes for i in range(n))


def idx_pair(images, labels):
    cut = len(images)
    return bytes([2, cut >> 8 & 255, cut & 255]) + images + labels


write("idx", "images_valid", b"\x00" + idx_images(3, 4, 5))
write("idx", "images_zero", b"\x00" + idx_images(0, 28, 28))
write("idx", "images_bad_magic", b"\x00" + idx_images(1, 2, 2, magic=0x801))
write("idx", "images_truncated", b"\x00" + idx_images(3, 4, 4)[:-5])
write("idx", "images_trailing", b"\x00" + idx_images(2, 3, 3) + b"\x01\x02")
write("idx", "images_short_header", b"\x00" + idx_images(1, 2, 2)[:10])
write("idx", "images_huge_count", b"\x00" + struct.pack(">IIII", 0x803, 0xFFFFFFFF, 65536, 65536))
write("idx", "labels_valid", b"\x01\x09" + idx_labels(12))
write("idx", "labels_out_of_range", b"\x01\x02" + idx_labels(12))
write("idx", "labels_truncated", b"\x01\x09" + idx_labels(12)[:-3])
write("idx", "pair_valid", idx_pair(idx_images(4, 3, 3), idx_labels(4)))
write("idx", "pair_gzip", idx_pair(gzip.compress(idx_images(4, 3, 3), mtime=0), gzip.compress(idx_labels(4), mtime=0)))
write("idx", "pair_gzip_truncated", idx_pair(gzip.compress(idx_images(4, 3, 3), mtime=0)[:-6], idx_labels(4)))
write("idx", "pair_count_mismatch", idx_pair(idx_images(4, 3, 3), idx_labels(5)))


# ------------------------------------------------------------------ CIFAR (mode, cut hi, cut lo, payload)
def cifar10(labels):
    return b"".join(bytes([l]) + bytes((i + 3 * p) % 256 for p in range(3072)) for i, l in enumerate(labels))


def cifar100(labels):
    return b"".join(bytes([l // 5, l]) + bytes((i + p) % 256 for p in range(3072)) for i, l in enumerate(labels))


write("cifar", "c10_valid", b"\x00\x00\x00" + cifar10([3, 9]))
write("cifar", "c10_bad_label", b"\x00\x00\x00" + cifar10([3, 10]))
write("cifar", "c10_truncated", b"\x00\x00\x00" + cifar10([1])[:-1])
write("cifar", "c10_empty", b"\x00\x00\x00")
write("cifar", "c100_valid", b"\x01\x00\x00" + cifar100([0, 99]))
write("cifar", "c100_bad_label", b"\x01\x00\x00" + cifar100([100]))
two = cifar10([1]) + cifar10([2])
write("cifar", "c10_two_files", bytes([2, 3073 >> 8, 3073 & 255]) + two)
write("cifar", "c10_file", b"\x03\x00\x00" + cifar10([4]))


# ------------------------------------------------------------------ safetensors (the whole file)
def safetensors(tensors, metadata=None, pad=True, header_override=None):
    header, data, off = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    text = header_override if header_override is not None else json.dumps(header, separators=(",", ":"))
    if pad:
        text += " " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text.encode())) + text.encode() + data


f32 = struct.pack("<4f", 1, 2, 3, 4)
i32 = struct.pack("<3i", 1, -2, 3)
f64 = struct.pack("<2d", 0.5, -1)
state = json.dumps({"searcher": {"epoch": 1}, "seconds": 0.5})
write("safetensors", "checkpoint", safetensors([("a.w", "F32", [2, 2], f32), ("b", "I32", [3], i32)],
                                             {"state": state, "format": "asap-checkpoint-v1"}))
write("safetensors", "f64_scalar", safetensors([("s", "F64", [], f64[:8]), ("v", "F64", [1], f64[8:])]))
write("safetensors", "empty_tensor", safetensors([("e", "F32", [0, 3], b""), ("x", "F32", [1], f32[:4])]))
write("safetensors", "no_tensors", safetensors([], {"k": "v"}))
write("safetensors", "unpadded", safetensors([("a", "F32", [4], f32)], pad=False))
write("safetensors", "bad_dtype", safetensors([("a", "BF16", [2], f32[:4])]))
write("safetensors", "truncated", safetensors([("a", "F32", [4], f32)])[:-3])
write("safetensors", "gap", safetensors([], header_override='{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}') + f32[:8])
write("safetensors", "overlap", safetensors([], header_override='{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                                                '"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}') + f32[:8])
write("safetensors", "big_shape", safetensors([], header_override='{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}'))
write("safetensors", "zero_then_huge_dim", safetensors([], header_override='{"a":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}}'))
write("safetensors", "header_too_long", struct.pack("<Q", 1 << 40) + b"{}")
write("safetensors", "not_object", safetensors([], header_override="[1,2,3]"))
write("safetensors", "meta_not_string", safetensors([], header_override='{"__metadata__":{"a":1}}'))

# ------------------------------------------------------------------ checkpoint (mode byte + file)
# The checksum of tools/checkpoint.cpp: CRC-32 over state + NUL and, per tensor in name order,
# name + NUL, int32 dtype (F32 0, F64 1, I32 2), int64 rank, int64 dims, bytes.
import zlib  # noqa: E402

DTYPE_CODE = {"F32": 0, "F64": 1, "I32": 2}


def checkpoint(tensors, state, fmt="asap-checkpoint-v2", seal=True, mode=0):
    text = json.dumps(state, separators=(",", ":"))
    crc = zlib.crc32(text.encode() + b"\0")
    for name, dtype, shape, raw in sorted(tensors):
        crc = zlib.crc32(name.encode() + b"\0", crc)
        crc = zlib.crc32(struct.pack("<iq", DTYPE_CODE[dtype], len(shape)) + struct.pack("<%dq" % len(shape), *shape), crc)
        crc = zlib.crc32(raw, crc)
    meta = {"checksum": "crc32:%08x" % (crc if seal else crc ^ 1), "format": fmt, "state": text}
    return bytes([mode]) + safetensors(sorted(tensors), meta)


DARTS_OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5"]
ck_tensors = [("alphas.normal", "F32", [2, 2], f32), ("weights.stem.0.weight", "I32", [3], i32)]
alive = [[1] * 8 for _ in range(14)]
alive_pruned = [[1] * 8 for _ in range(14)]
alive_pruned[3][0] = 0
searcher = {"format": "asap-search-state-1", "epoch": 2, "step": 8, "temperature": 0.8, "primitives": DARTS_OPS,
            "sparsity": 0.01, "alive": {"normal": alive_pruned, "reduce": alive},
            "prune_log": [{"epoch": 1, "step": 6, "cell_type": "normal", "edge": 3, "op": "none", "phi": 0.01,
                           "T": 0.8, "theta": 0.05}]}
search_state = {"searcher": searcher, "seconds": 3.5, "completed": False}
genotype_json = {"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["skip_connect", 0], ["sep_conv_3x3", 1],
                            ["skip_connect", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["skip_connect", 2]],
                 "normal_concat": [2, 3, 4, 5],
                 "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
                            ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
                 "reduce_concat": [2, 3, 4, 5]}
train_state = {"trainer": {"format": "asap-train-state-1", "epoch": 3, "step": 30, "genotype": genotype_json,
                           "drop_path_offset": 7}, "seconds": 9.0, "test": {"loss": 0.6, "acc": 0.8}}
write("checkpoint", "search_valid", checkpoint(ck_tensors, search_state))
write("checkpoint", "search_valid_reseal", checkpoint(ck_tensors, search_state, mode=1))
write("checkpoint", "train_valid", checkpoint(ck_tensors, train_state))
write("checkpoint", "train_valid_reseal", checkpoint(ck_tensors, train_state, mode=1))
write("checkpoint", "bad_checksum", checkpoint(ck_tensors, search_state, seal=False))
write("checkpoint", "format_v1", checkpoint(ck_tensors, search_state, fmt="asap-checkpoint-v1"))
for name, edit in [("epoch_huge", ("epoch", 10 ** 9)), ("epoch_negative", ("epoch", -1)), ("epoch_string", ("epoch", "2")),
                   ("step_float", ("step", 1.5)), ("temperature_zero", ("temperature", 0))]:
    bad = json.loads(json.dumps(search_state))
    bad["searcher"][edit[0]] = edit[1]
    write("checkpoint", name, checkpoint(ck_tensors, bad, mode=1))
bad = json.loads(json.dumps(train_state))
bad["test"]["acc"] = 2
write("checkpoint", "train_acc_range", checkpoint(ck_tensors, bad, mode=1))
write("checkpoint", "state_not_json", bytes([1]) + safetensors(ck_tensors, {"format": "asap-checkpoint-v2", "state": "{x"}))


# ------------------------------------------------------------------ YAML config
write("config", "empty", "")
write("config", "minimal", "data:\n  dataset: fashion_mnist\n  root: /tmp/x\n  subset: 64\nrun:\n  device: cpu\n  threads: 2\n")
write("config", "full", """data:
  dataset: cifar10
  root: data/cifar10
  train_portion: 0.5
  subset: 0
  test_subset: 0
  batch_size: 64
  eval_batch_size: 256
  crop_padding: 4
  flip: true
  cutout: 16
  normalize: true
  prefetch: true
space:
  primitives: [none, max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5]
  nodes: 4
search:
  epochs: 50
  stop_when_converged: true
  alpha_step_skips_weight_grads: true
  network: {C: 16, layers: 8, stem_multiplier: 3, reduction_cells: [2, 5]}
  weights: {lr: 0.025, lr_min: 0.001, momentum: 0.9, weight_decay: 0.0003, grad_clip: 5}
  alphas: {lr: 0.0006, beta1: 0.5, beta2: 0.999, eps: 1.0e-8, weight_decay: 0.001}
  annealer:
    temperature_schedule: exponential
    T0: 1.6
    beta: 0.95
    temperature_unit: epoch
    min_temperature: 0.001
    threshold_policy: fraction
    threshold_c: 0.4
    theta0: 0.05
    gamma: 0.95
    threshold_unit: epoch
    warmup_epochs: -1
    warmup_temperature: 1.0
    prune_every: step
train:
  genotype: DARTS_V2
  epochs: 600
  batch_size: 96
  eval_every: 1
  network: {C: 36, layers: 20, stem_multiplier: 3, auxiliary: true, auxiliary_weight: 0.4, drop_path: 0.2}
  optimizer: {lr: 0.025, lr_min: 0, momentum: 0.9, weight_decay: 0.0003, grad_clip: 5}
run:
  seed: 2
  device: auto
  threads: 0
  out: runs/default
  checkpoint_every: 1
  on_nan: stop
  progress: true
  plots: true
""")
write("config", "with_sets", "search:\n  epochs: 7\n\0search.epochs=3\nsearch.network.C=4\nspace.primitives=[none, skip_connect]\nrun.out=/tmp/x")
write("config", "typo", "data:\n  batch_sise: 3\n")
write("config", "wrong_type", "search:\n  epochs: many\n")
write("config", "syntax", "data: [1, 2\n")
write("config", "top_list", "- a\n- b\n")
write("config", "anchors", "data: &d {batch_size: 8}\nrun: *d\n")
write("config", "complex_key", "? [a, b]\n: 1\n")
write("config", "seed_neg", "run:\n  seed: -1\n")
write("config", "genotype_text", "train:\n  genotype: \"Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[], reduce_concat=[2])\"\n")

# ------------------------------------------------------------------ genotype text
darts_v2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
            "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
            "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
write("genotype", "darts_v2", darts_v2)
write("genotype", "range_tuples", "Genotype(reduce=(('avg_pool_3x3', 1), (\"sep_conv_5x5\", 0)), reduce_concat=range(2, 3), "
                                  "normal=[('dil_conv_5x5', 0), ('sep_conv_7x7', 1),], normal_concat=range(2, 3))")
write("genotype", "no_prefix", "(normal=[('skip_connect', 0), ('skip_connect', 1)], normal_concat=[2], "
                               "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])")
write("genotype", "unknown_op", darts_v2.replace("dil_conv_3x3", "conv_9x9"))
write("genotype", "bad_input", darts_v2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 7)"))
write("genotype", "unterminated", darts_v2[:40])
write("genotype", "twice", darts_v2[:-1] + ", normal_concat=[2])")
write("genotype", "huge_int", darts_v2.replace("[2, 3, 4, 5]", "[2, 99999999999999999999]", 1))
write("genotype", "huge_range", darts_v2.replace("[2, 3, 4, 5]", "range(0, 2000000000)", 1))

write("genotype", "json_valid", json.dumps({"normal": [["skip_connect", 0], ["sep_conv_3x3", 1]], "normal_concat": [2],
                                           "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1]], "reduce_concat": [2]}))
write("genotype", "json_bad_concat", '{"normal": [["skip_connect", 0], ["skip_connect", 1]], "normal_concat": ["2"], '
                                    '"reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1]], "reduce_concat": [2]}')
write("genotype", "json_wide_input", '{"normal": [["skip_connect", 0], ["skip_connect", 4294967297]], "normal_concat": [2], '
                                    '"reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1]], "reduce_concat": [2]}')

# ------------------------------------------------------------------ dictionaries
KEYS = """data dataset root train_portion subset test_subset batch_size eval_batch_size crop_padding flip cutout
normalize prefetch space primitives nodes search epochs stop_when_converged alpha_step_skips_weight_grads network C
layers stem_multiplier reduction_cells weights lr lr_min momentum weight_decay grad_clip alphas beta1 beta2 eps
annealer temperature_schedule T0 beta temperature_unit min_temperature threshold_policy threshold_c theta0 gamma
threshold_unit warmup_epochs warmup_temperature prune_every train genotype eval_every auxiliary auxiliary_weight
drop_path optimizer run seed device threads out checkpoint_every on_nan progress plots fashion_mnist mnist cifar10
cifar100 exponential constant epoch step fraction stop auto cpu cuda:0 true false null""".split()
with open(os.path.join(HERE, "config.dict"), "w") as f:
    for k in KEYS:
        f.write('"%s"\n' % k)
    for tok in [": ", "\\x0a  ", "[", "]", "{", "}", ", ", "- ", "&a ", "*a", "? ", "!!str ", "!!int ", "'", "\\x22",
                "---", "...", "# ", "|", ">", ".inf", "-1", "1e308", "0x10", "\\x00", "="]:
        f.write('"%s"\n' % tok)
OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
       "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7"]
with open(os.path.join(HERE, "genotype.dict"), "w") as f:
    for t in ["Genotype", "normal", "reduce", "normal_concat", "reduce_concat", "range", "(", ")", "[", "]", "=", "{", "}", ":",
              ", ", "'", "\\x22", "-", "+"] + ["'%s'" % o for o in OPS]:
        f.write('"%s"\n' % t)
with open(os.path.join(HERE, "checkpoint.dict"), "w") as f:
    for t in ["__metadata__", "checksum", "crc32:", "format", "asap-checkpoint-v2", "state", "searcher", "trainer",
              "epoch", "step", "temperature", "primitives", "sparsity", "alive", "normal", "reduce", "prune_log",
              "cell_type", "edge", "op", "phi", "T", "theta", "seconds", "completed", "test", "loss", "acc",
              "genotype", "drop_path_offset", "asap-search-state-1", "asap-train-state-1", "true", "false",
              "-1", "1e308", "{", "}", "[", "]", ":", ",", "\\x22", "\\\\\\x22"] + DARTS_OPS:
        f.write('"%s"\n' % t)
with open(os.path.join(HERE, "safetensors.dict"), "w") as f:
    for t in ["__metadata__", "dtype", "shape", "data_offsets", "F32", "F64", "I32", "BF16", "format",
              "asap-checkpoint-v1", "state", "{", "}", "[", "]", ":", ",", "\\x22"]:
        f.write('"%s"\n' % t)
print("corpus written to", CORPUS)
