#!/usr/bin/env python3
"""Write a deterministic benchmark log: N lines drawn from the loghub samples, each ending
in a unique ` seq=K`, so a run can check that every line arrived exactly once.

    make-dataset.py OUT_FILE [N_LINES=5000000]

5,000,000 lines come to about 703 MB (about 141 bytes a line)."""
import os, random, sys

out_path = sys.argv[1]
n_lines = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000_000
src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "loghub")
lines = []
for name in sorted(os.listdir(src)):
    if name.endswith("_2k.log"):
        with open(os.path.join(src, name), errors="replace") as f:
            lines += f.read().splitlines()
random.seed(1)
with open(out_path, "w") as out:
    for k in range(n_lines):
        out.write(f"{random.choice(lines)} seq={k}\n")
