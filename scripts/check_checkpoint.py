#!/usr/bin/env python3
"""Checks that a percept checkpoint loads with the `safetensors` package and holds the tensors
PyTorch's nn.Sequential would name for its network: `<module>.weight` / `<module>.bias`, with
module indices counting Linear, activation and LayerNorm modules in order.

Usage: python3 scripts/check_checkpoint.py CHECKPOINT
Needs: pip install safetensors numpy
"""
import json
import sys

from safetensors import safe_open
from safetensors.numpy import load_file


def expected(model):
    """(name, shape) pairs of the parameters, in nn.Sequential order."""
    widths, norm = model["widths"], model["norm"]
    out, module = [], 0
    for layer in range(len(widths) - 1):
        fan_in, fan_out = widths[layer], widths[layer + 1]
        out.append((f"{module}.weight", (fan_out, fan_in)))
        if model["bias"]:
            out.append((f"{module}.bias", (fan_out,)))
        module += 1
        if layer + 2 == len(widths):
            break
        layernorm = []
        if model["norm_affine"]:
            layernorm = [("weight", (fan_out,)), ("bias", (fan_out,))]
        if norm == "before_activation":
            out += [(f"{module}.{n}", s) for n, s in layernorm]
            module += 2
        elif norm == "after_activation":
            module += 1
            out += [(f"{module}.{n}", s) for n, s in layernorm]
            module += 1
        else:
            module += 1
    return out


def main(path):
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata()
    model = json.loads(metadata["model"])
    tensors = load_file(path)
    for name, shape in expected(model):
        if name not in tensors:
            sys.exit(f"{path}: tensor {name} is missing")
        if tuple(tensors[name].shape) != shape or tensors[name].dtype.name != "float32":
            sys.exit(f"{path}: {name} is {tensors[name].dtype} {tensors[name].shape}, expected float32 {shape}")
    names = [n for n, _ in expected(model)]
    print(f"{path}: {len(names)} parameter tensors as nn.Sequential names them ({', '.join(names)}), "
          f"{len(tensors) - len(names)} optimizer/extra tensors, widths {model['widths']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
