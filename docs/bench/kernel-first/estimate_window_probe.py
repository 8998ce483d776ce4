"""The estimation window's side (deconv.photo.ESTIMATE_SIDE) on the estimator loop (issue 35):
TRAINING photos only (../shared/data/train, whole), blurred by our own hand-shake kernels
as estimator_loop.py blurs them (noise 0.01, 8 bits, scored aligned), the product's own
steps (path=photo: both windows, the guard, TV; a refused photo scores 0).

    python docs/bench/kernel-first/estimate_window_probe.py N SIDE CLASSES [SHARP_DIR] [OFFSET]

e.g. `40 512 small ../shared/data/train/sun80 40`: photos 40-79 of sun80, 13-27 px kernels,
a 512 px window. Prints estimator_loop.py's per-photo rows and one summary line.
"""
import os
import sys
from multiprocessing import Pool
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402

import estimator_loop as loop  # noqa: E402


def use_side(side: int) -> None:
    import deblurkit.deconv.photo as photo

    photo.ESTIMATE_SIDE = side


if __name__ == "__main__":
    n, side, classes = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
    sharp = Path(sys.argv[4]) if len(sys.argv) > 4 else loop.SHARP
    offset = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    files = sorted(p for p in sharp.rglob("*") if p.suffix.lower() in loop.IMAGE_EXTENSIONS)[offset:offset + n]
    jobs = [(offset + i, f, loop.BlindConfig(), "tv", classes, True) for i, f in enumerate(files)]
    with Pool(2, initializer=use_side, initargs=(side,)) as pool:
        rows = sorted(pool.map(loop.one, jobs, chunksize=1))
    for i, ext, ge, gt, sim, fb, sec in rows:
        print(f"{i:3d} {ext:3d}px est {ge:+.2f} true {gt:+.2f} sim {sim:.2f} {sec:5.2f} s{' fell back' if fb else ''}")
    print(f"side {side} {sharp.name} n={len(rows)}: est {np.mean([r[2] for r in rows]):+.3f} true {np.mean([r[3] for r in rows]):+.3f} "
          f"sim {np.mean([r[4] for r in rows]):.3f} refused {sum(r[5] for r in rows)} estimate {np.mean([r[6] for r in rows]):.2f} s")
