#!/usr/bin/env python3
"""PyTorch itself loads what `wkv train` writes: torch.load (also with weights_only=True, the
restricted unpickler) returns an OrderedDict of float32 tensors in the official trainer's order
whose values equal wkv's .safetensors twin bit for bit.
Usage: torch_load_check.py WKV_EXE WORK_DIR   (run by CTest when Debian's python3-torch is there)
"""
import collections
import json
import os
import shutil
import struct
import subprocess
import sys

import torch


def main():
    wkv, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    init = os.path.join(work, "init.pth")
    data = os.path.join(work, "data.txt")
    with open(data, "w") as f:
        f.write("in the beginning was the word, and the word was with god. " * 40)
    subprocess.run([wkv, "init", "-o", init, "--n-layer", "2", "--n-embd", "32", "--head-size",
                    "16", "--vocab", "256"], check=True)
    run = os.path.join(work, "run")
    subprocess.run([wkv, "train", "-m", init, "--data", data, "-o", run, "--steps", "3",
                    "--batch", "2", "--ctx", "16", "--warmup", "1", "--val-every", "0"],
                   check=True, stderr=subprocess.DEVNULL)
    for pth in (init, os.path.join(run, "rwkv-final.pth")):
        sd = torch.load(pth, map_location="cpu")
        safe = torch.load(pth, map_location="cpu", weights_only=True)
        assert isinstance(sd, collections.OrderedDict), type(sd)
        assert list(sd.keys()) == list(safe.keys())
        keys = list(sd.keys())
        assert keys[0] == "emb.weight" and keys[-1] == "head.weight", keys
        assert all(t.dtype == torch.float32 for t in sd.values())
        assert sd["blocks.0.att.r_k"].shape == (2, 16), sd["blocks.0.att.r_k"].shape
        print(f"{pth}: torch.load ok, {len(sd)} tensors, "
              f"{sum(t.numel() for t in sd.values())} parameters")
    # The trained .pth equals its .safetensors twin exactly.
    sd = torch.load(os.path.join(run, "rwkv-final.pth"), map_location="cpu", weights_only=True)
    raw = open(os.path.join(run, "rwkv-final.safetensors"), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    names = [k for k in header if k != "__metadata__"]
    assert sorted(names) == sorted(sd.keys()), (sorted(names), sorted(sd.keys()))
    for k in names:
        a, b = header[k]["data_offsets"]
        t = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32)
        assert torch.equal(t.reshape(header[k]["shape"]), sd[k]), k
    print("rwkv-final.pth == rwkv-final.safetensors, every tensor")


if __name__ == "__main__":
    main()
