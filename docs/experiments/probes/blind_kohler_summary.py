"""Per-kernel means of blind_kohler.py's lines (files or stdin)."""
import fileinput
from collections import defaultdict

import numpy as np

rows = defaultdict(list)
for line in fileinput.input():
    p = line.split()
    if len(p) == 4 and p[0].isdigit():
        rows[p[1]].append((float(p[2]), float(p[3])))
print("kernel  pairs  blind+wiener  true-kernel wiener")
for k in sorted(rows):
    a = np.array(rows[k])
    print(f"{k}      {len(a):5d}  {a[:, 0].mean():+12.2f}  {a[:, 1].mean():+18.2f}")
m = np.array([np.array(v).mean(0) for v in rows.values()])
print(f"mean of kernels  {m[:, 0].mean():+10.2f}  {m[:, 1].mean():+18.2f}")
