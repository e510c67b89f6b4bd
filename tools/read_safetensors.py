#!/usr/bin/env python3
"""Reads an asap-engine safetensors file without numpy; prints metadata, then one line per tensor:
`name DTYPE d0xd1x... v0 v1 ...` (shape `scalar` for 0-d) with values in Python's exact repr."""
import array, json, struct, sys

def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        values = array.array({"F32": "f", "F64": "d", "I32": "i"}[info["dtype"]])
        values.frombytes(data[8 + n + begin:8 + n + end])
        if sys.byteorder == "big":
            values.byteswap()
        tensors[name] = (info["dtype"], info["shape"], values.tolist())
    return tensors, meta

if __name__ == "__main__":
    tensors, meta = load(sys.argv[1])
    for key, value in meta.items():
        print("meta", key, value)
    for name, (dtype, shape, values) in tensors.items():
        print(name, dtype, "x".join(map(str, shape)) or "scalar", *map(repr, values))
