#!/usr/bin/env python3
"""Writes a tiny Fashion-MNIST-shaped IDX dataset (gzip) for end-to-end tests.

Each class is a distinct, learnable pattern plus noise, so a few steps of training beat chance.
Usage: make_tiny_idx.py OUT_DIR [N_TRAIN] [N_TEST] [SIZE]
"""
import gzip
import os
import random
import struct
import sys


def write(out, prefix, n, size, seed):
    rng = random.Random(seed)
    labels = [i % 10 for i in range(n)]
    rng.shuffle(labels)
    pixels = bytearray()
    for y in labels:
        for r in range(size):
            for c in range(size):
                on = ((r * 10) // size == y) or ((c * 10) // size == (y * 3) % 10)
                v = (200 if on else 30) + rng.randint(-25, 25)
                pixels.append(max(0, min(255, v)))
    with gzip.open(f"{out}/{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, size, size) + bytes(pixels))
    with gzip.open(f"{out}/{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    n_train = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    n_test = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    write(out, "train", n_train, size, 1)
    write(out, "t10k", n_test, size, 2)
