"""Start-up of `deblur photo.png` against a bare `import torch`, in interleaved runs.

    python docs/bench/startup.py [RUNS] [OUT.txt]

Each round times, as fresh processes, `python -c "import torch"` and the installed `deblur`
restoring a 32x32 photo with the bundled default model and its own preset, so the second is torch's
import plus everything the tool adds (its CLI, the model's load and checks, the photo's
read, restoration and write). Bytecode caches are allowed, as after a pip install. Run it on
a quiet machine: the ratio of the means is the figure issue 36 asks about (at most 1.3).
`deblur` imports torch with the garbage collector off (cli/entry.py), the bare import with
it on: part of the difference is that.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    beside = Path(sys.executable).with_name("deblur")  # the same environment as the baseline's python
    deblur = str(beside) if beside.exists() else shutil.which("deblur")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "tiny.png"
        rng = np.random.default_rng(0)
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(photo)
        run = [deblur, str(photo), "-o", str(Path(tmp) / "out.png"), "--overwrite", "--seed", "0", "-q"]
        torch_only = [sys.executable, "-c", "import torch"]
        timed(torch_only, env)  # warm the page cache and the bytecode
        timed(run, env)
        torch_s, deblur_s = [], []
        for _ in range(runs):
            torch_s.append(timed(torch_only, env))
            deblur_s.append(timed(run, env))
    lines = [f"{runs} interleaved rounds, {os.cpu_count()} CPUs, {sys.version.split()[0]}",
             f"import torch:          mean {statistics.mean(torch_s):.3f} s  median {statistics.median(torch_s):.3f} s",
             f"deblur 32x32 photo:    mean {statistics.mean(deblur_s):.3f} s  median {statistics.median(deblur_s):.3f} s",
             f"ratio of the means:    {statistics.mean(deblur_s) / statistics.mean(torch_s):.3f} (issue 36 asks at most 1.3)"]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if out is not None:
        out.write_text(text)


if __name__ == "__main__":
    main()
