"""Issue 35, ninth session: time and the process's peak memory of deconvolving a 12 MP photo
(random 8-bit pixels) whole with a KS px kernel array (a straight 105-215 px stroke), as the
kernel path does since photos up to 4096 px a side are solved whole.

    /usr/bin/time -f "peak %M KB" python docs/bench/kernel-first/tv_whole_memory.py KS
"""
import sys, time, numpy as np, torch
torch.set_num_threads(2)
from deblurkit.deconv import photo
ks = int(sys.argv[1])
rng = np.random.default_rng(0)
y = (rng.random((3000, 4000, 3)) * 255).astype(np.uint8)
k = np.zeros((ks, ks)); k[ks // 2, 10:ks - 10] = 1; k /= k.sum()
t = time.perf_counter(); photo.deconvolve_photo(y, k, channels_first=True); print(ks, "%.2f s" % (time.perf_counter() - t))
