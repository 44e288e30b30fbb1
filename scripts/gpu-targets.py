#!/usr/bin/env python3
"""The open issues' GPU targets against what scripts/gpu-check.sh measured.

    python3 scripts/gpu-targets.py DIR

DIR holds gpu-check's output: the JSON records per family (fft.json, pcr-deq.json,
deeppcr.json: one JSON array per line, or an empty line), run.log (whose `record <family>: {...}`
lines keep the cases of a run its time limit stopped) and torch.txt (PyTorch from the same call).
Prints one line per target with MET or MISSED, and the cases it could not find. gpu-check.sh
runs it last and appends its lines to run.log.
"""

import json
import re
import sys
from pathlib import Path

# The issues' bars where torch.txt lacks a line (ANCHORS.md, H200, 2026-11-27).
ANCHOR_DEEP_MLP = (28.1, 78.8)  # L=1024 w=16 B=64 eager: forward, forward+backward (ms)
ANCHOR_DEQ = 1.97  # 30 fixed-point iterations, w=1024, B=1024 (ms)


def records(folder):
    """Every record gpu-check wrote, by name, from the JSON files and run.log's record lines."""
    seen, found = set(), []

    def add(record):
        key = json.dumps(record, sort_keys=True)
        if key not in seen:
            seen.add(key)
            found.append(record)

    for name in ("fft.json", "pcr-deq.json", "deeppcr.json"):
        path = folder / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                batch = json.loads(line) if line.strip() else []
            except json.JSONDecodeError:
                continue  # a run stopped while writing its array; run.log has its records
            for record in batch:
                add(record)
    log = folder / "run.log"
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            match = re.match(r"record [\w-]+: (\{.*\})$", line)
            if match:
                add(json.loads(match.group(1)))
    return found


def torch_figures(folder):
    """PyTorch's deep-MLP (forward, forward+backward) and DEQ times from torch.txt, if there."""
    text = (folder / "torch.txt").read_text() if (folder / "torch.txt").exists() else ""
    mlp = re.search(
        r"torch deep tanh mlp L=1024 w=16 B=64: fwd ([\d.]+) ms, fwd\+bwd ([\d.]+) ms", text
    )
    deq = re.search(r"torch deq fixed-point 30 iters w=1024 B=1024: ([\d.]+) ms", text)
    return (
        (float(mlp.group(1)), float(mlp.group(2))) if mlp else None,
        float(deq.group(1)) if deq else None,
    )


def verdict(issue, what, value, target, met):
    print(f"issue {issue}  {what}: {value} (target {target})  {'MET' if met else 'MISSED'}")
    return met


def main(folder):
    found = records(folder)
    torch_mlp, torch_deq = torch_figures(folder)
    outcome = {3: [], 4: [], 6: []}

    # Issue 3: every power-of-two length up to 4096 at 60% of the copy bandwidth.
    for r in found:
        if r.get("name") in ("fft/c2c", "fft/r2c"):
            batch, n = r["shape"]
            if n & (n - 1) == 0 and n <= 4096:
                ratio = r["baseline"]["speedup"]
                what = f"{r['name']} {batch} x {n}"
                outcome[3].append(verdict(3, what, f"{ratio:.2f} of copy", ">= 0.60", ratio >= 0.6))

    # Issue 4: the tridiagonal solve at 60% of copy, DeepPCR against PyTorch and our own chain.
    for r in found:
        if r.get("name") == "pcr/tridiagonal" and r["shape"] == [16384, 1024]:
            ratio = r["baseline"]["speedup"]
            what = "tridiagonal 16384 x 1024"
            outcome[4].append(verdict(4, what, f"{ratio:.2f} of copy", ">= 0.60", ratio >= 0.6))
        if r.get("name") == "deeppcr" and r["shape"] == [1024, 16, 64]:
            fwd, fwd_bwd = torch_mlp or ANCHOR_DEEP_MLP
            source = "PyTorch eager, this call" if torch_mlp else "PyTorch eager, ANCHORS.md"
            ours = (r["median_ms"], r["deeppcr_backward_ms"])
            chain = (r["sequential_forward_ms"], r["sequential_backward_ms"])
            torch = (fwd, fwd_bwd - fwd)
            for i, (direction, bar) in enumerate((("forward", 10), ("backward", 30))):
                speedup = torch[i] / ours[i]
                what = f"DeepPCR {direction} L=1024 w=16 B=64 vs {source}"
                outcome[4].append(verdict(4, what, f"{speedup:.1f}x", f">= {bar}x", speedup >= bar))
                what = f"DeepPCR {direction} vs our sequential chain"
                value = f"{ours[i]:.3f} ms against {chain[i]:.3f}"
                outcome[4].append(verdict(4, what, value, "faster", ours[i] < chain[i]))

    # Issue 6: 30 fixed-point iterations at 1024 x 1024 within PyTorch's time.
    bar = torch_deq or ANCHOR_DEQ
    for r in found:
        name = str(r.get("name", ""))
        if name.startswith("deq/fixed-point-30") and r["shape"] == [1024, 1024, 30]:
            ms = r["median_ms"]
            what = f"{name} vs PyTorch {bar:.3f} ms"
            outcome[6].append(verdict(6, what, f"{ms:.3f} ms", f"<= {bar:.3f} ms", ms <= bar))

    for issue, results in outcome.items():
        if not results:
            print(f"issue {issue}: no record at the target's sizes was found")
        else:
            print(f"issue {issue}: {sum(results)} of {len(results)} targets met")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python3 scripts/gpu-targets.py DIR (the folder gpu-check.sh wrote)")
    main(Path(sys.argv[1]))
