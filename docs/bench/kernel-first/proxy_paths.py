"""Issue 35, observation only (validation photos; nothing is set from it): which path `fast --kernel auto` takes on
the stand-in small set (proxy_kernels.py, `deblur bench kernels --crop 512 --noise 0.01 --limit 96`), and why, for
each photo sent to the blind path. Rebuilds the bench's crops (photo i by kernel i mod 8, noise seed [1234, i]).

    python docs/bench/kernel-first/proxy_paths.py          (kernels in /tmp/proxyk: proxy_kernels.py /tmp/proxyk)
"""
import sys, re, collections
import numpy as np, torch
from pathlib import Path
from deblurkit.bench.kernels import blur_with_kernel, load_kernels
from deblurkit.bench.runner import _centre
from deblurkit.io import read_image, IMAGE_EXTENSIONS
from deblurkit.api import Deblurrer
torch.set_num_threads(2)
kernels = load_kernels(Path('/tmp/proxyk/small'), 0.05, True)
sharp = Path('../shared/data/val')
files = sorted(p for p in sharp.rglob('*') if p.suffix.lower() in IMAGE_EXTENSIONS)[:96]
d = Deblurrer()
c = collections.Counter()
for i, f in enumerate(files):
    k = kernels[i % len(kernels)]
    u8 = np.round(read_image(f).rgb * 255).astype(np.uint8)
    y = blur_with_kernel(u8, k.array, 0.01, np.random.default_rng([1234, i]), False)
    y = _centre(y, 512)
    r = d.restore(y, 'fast', kernel='auto', return_samples=True)
    if r.kernel.path == 'blind':
        reason = re.sub(r'[\d.]+', 'N', r.kernel.reason)
        c[reason] += 1
        print(i, k.name, r.kernel.reason, flush=True)
print(c)
