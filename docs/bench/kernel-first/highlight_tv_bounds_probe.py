"""Issue 35 probe (training photos only): a cheaper highlight step? The product's
highlight solver (deconv.highlights.richardson_lucy_clipped: 50 accelerated Richardson-Lucy
steps, four FFTs each) costs 77 s on a 12 MP night photo. Three cheaper ways, each against
the TV step and the product's given-kernel step (photo.deconvolve_photo), TRUE kernel:

- solver=bounds: the TV step itself (nonblind.tv_deconvolve: half-quadratic splitting, six
  steps of two FFTs) reads the clipped pixels as lower bounds: after each step a clipped
  pixel's data is max(y, k * x), the estimate blurred (a majoriser of the bound's penalty
  (y - k x)_+^2), and the pad's data k * x (pad=1: read as unknown). Four FFTs a step;
  extra=E more steps at the largest beta, rate=R the beta's growth.
- solver=rl_tv: the highlight solver started from the TV step's result (iterations=N).
- solver=lift: the highlight solver on the photo shrunk scale=S times (a shrunk pixel a bound
  where any of its pixels was clipped), its estimate blurred and brought back up as the
  clipped pixels' data, then the plain TV step.
- solver=local: the TV step, and the highlight solver's result within reach=R kernel extents
  of a clipped pixel (faded out over one more): what a highlight step solved only in windows
  around the lights could keep (both solved whole here).

    python docs/bench/kernel-first/highlight_tv_bounds_probe.py camera N GAMMA GAIN solver=... [options]

The photos as highlight_solver_product_probe's camera mode; the third column is the solver
tried, with its time (one thread). (The first runs printed that column as "TV with bounds"
whatever the solver: the record names each.) Two worker processes of one thread each; run from the repository root.
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multiprocessing import Pool  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import estimator_loop as L  # noqa: E402
from camera_response_probe import camera_photo, clipped_photos  # noqa: E402
from deblurkit.deconv.blind import psf2otf, to_gray  # noqa: E402
from deblurkit.deconv.highlights import CLIPPED, clipped_share  # noqa: E402
from deblurkit.deconv.nonblind import (_add_shifted_, _backward_difference, _difference_energy,  # noqa: E402
                                       _forward_difference, _shrink_, load_padded_channel, solver_arrays,
                                       tv_deconvolve, tv_weight, unit)
from deblurkit.deconv.photo import deconvolve_photo  # noqa: E402

OPT = {"extra": 0, "pad": 1, "rate": 2.0 * np.sqrt(2.0), "solver": "bounds", "iterations": 50, "scale": 1.0, "reach": 1.0, "fine": 15, "levels": 2}


def rl_from_tv(rgb, k, iterations=15):
    """The product's highlight solver started from the TV step's result, not from the photo."""
    from deblurkit.deconv.blind import noise_sigma
    from deblurkit.deconv.highlights import tv_term
    y = unit(rgb, np.float32)
    return rl_variant(y, k, iterations, tv_term(noise_sigma(to_gray(y))), init=tv_deconvolve(rgb, k))


def tv_bounds(rgb, k, weight=None, extra=0, pad=True, rate=2.0 * np.sqrt(2.0)):
    weight = tv_weight(to_gray(unit(rgb))) if weight is None else weight
    k, out, shape = solver_arrays(rgb, k, None)
    h, w, channels = rgb.shape
    K = torch.from_numpy(psf2otf(k, shape)).to(torch.complex64)
    lam = 2.0 / weight
    kk, dd = lam * K.abs() ** 2, _difference_energy(shape, torch.float32)
    outside = torch.ones(shape, dtype=torch.bool)
    outside[:h, :w] = False
    betas = []
    beta = 1.0
    while beta <= 256.0 * (1 + 1e-9):
        betas.append(beta)
        beta *= rate
    betas += [betas[-1]] * extra
    for c in range(channels):
        y = torch.empty(shape, dtype=torch.float32)
        load_padded_channel(y.numpy(), rgb, c)
        clipped = (y >= CLIPPED) & ~outside
        data = y.clone()
        x = y.clone()
        g, adjoint = torch.empty_like(x), torch.empty_like(x)
        for beta in betas:
            kty = torch.fft.rfft2(data) * (lam * K.conj())
            _forward_difference(x, -1, g)
            _shrink_(g, 1 / beta, scratch=adjoint)
            _backward_difference(g, -1, adjoint)
            _forward_difference(x, -2, g)
            _shrink_(g, 1 / beta, scratch=x)
            _add_shifted_(adjoint, g, -2)
            adjoint.sub_(g)
            X = (torch.fft.rfft2(adjoint) * beta + kty) / (kk + beta * dd)
            x = torch.fft.irfft2(X, s=shape)
            v = torch.fft.irfft2(X * K, s=shape)
            data = torch.where(clipped, torch.maximum(y, v), data)
            if pad:
                data = torch.where(outside, v, data)
        out[..., c] = x[:h, :w].clamp(0, 1).numpy()
    return out


def lifted_tv(rgb, k, scale=1, iterations=50):
    """The clipped pixels' data lifted to what the highlight solver's estimate, blurred, says
    they held (solved on the photo shrunk `scale` times, the lift brought back up), then
    the plain TV step on that: the slow solver only where the bounds need it, and small."""
    import cv2
    from deblurkit.deconv.blind import noise_sigma
    from deblurkit.deconv.highlights import tv_term
    from deblurkit.deconv.photo import resize_kernel
    y = unit(rgb, np.float32)
    H, W = y.shape[:2]
    mask = y >= CLIPPED
    weight = tv_weight(to_gray(y))
    if scale > 1:
        size = (max(round(W / scale), 1), max(round(H / scale), 1))
        ys = cv2.resize(y, size, interpolation=cv2.INTER_AREA)
        ms = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
        n = max(int(round(k.shape[0] / scale)) | 1, 3)
        ks = resize_kernel(k, n)
    else:
        ys, ms, ks = y, mask, k / k.sum()
    x = rl_variant(ys, ks, iterations, tv_term(noise_sigma(to_gray(ys))), mask=ms, clamp=False)
    lifted = np.stack([cv2.filter2D(x[..., c], -1, ks.astype(np.float32), borderType=cv2.BORDER_REFLECT)
                       for c in range(x.shape[2])], -1)
    if scale > 1:
        lifted = cv2.resize(lifted, (W, H), interpolation=cv2.INTER_LINEAR)
    data = np.where(mask, np.maximum(y, lifted), y)
    return tv_deconvolve(data, k, weight)


def local_blend(rgb, k, reach=1.0):
    """The TV step everywhere, the highlight solver's result within `reach` kernel extents of
    a clipped pixel, faded out over one more extent (both solved on the whole photo here:
    what quality a windowed highlight step could keep)."""
    import cv2
    from deblurkit.deconv.blind import noise_sigma
    from deblurkit.deconv.highlights import richardson_lucy_clipped, tv_term
    from deblurkit.deconv.photo import kernel_extent
    y = unit(rgb, np.float32)
    tv = tv_deconvolve(y, k)
    mask = (y >= CLIPPED).any(-1)
    if not mask.any():
        return tv
    rl = richardson_lucy_clipped(y, k, tv=tv_term(noise_sigma(to_gray(y))))
    d = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    L = kernel_extent(k)
    w = np.clip(((reach + 1) * L - d) / L, 0, 1)[..., None]
    return tv * (1 - w) + rl * w


def rl_variant(y, k, iterations, tv, mask=None, init=None, clamp=True):
    """The product's highlight solver with its bounds given as a mask (default: y's clipped
    pixels), started from `init` (default: the photo), its light above 1 kept (clamp=False)."""
    import inspect
    import deblurkit.deconv.highlights as H
    src = inspect.getsource(H.richardson_lucy_clipped)

    def patch(text, old, new):  # the solver's source as this probe expects it, or a loud failure
        if old not in text:
            raise RuntimeError(f"richardson_lucy_clipped changed: {old!r} not found; update this probe")
        return text.replace(old, new)
    src = patch(src, "def richardson_lucy_clipped(rgb", "def rl(padded, rgb")
    if mask is not None:
        src = patch(src, "bound = (y >= CLIPPED) | outside", "bound = padded(mask, c, shape, False) | outside")
    if init is not None:
        src = patch(src, "x.copy_(y)\n            point.copy_(y)",
                    "x.copy_(y)\n            x[:h, :w] = torch.from_numpy(np.ascontiguousarray(init[..., c])).clamp(min=FLOOR)"
                    "\n            point.copy_(x)")  # the pad as the photo's
    if not clamp:
        src = patch(src, "x[:h, :w].clamp(0, 1).numpy()", "x[:h, :w].numpy()")
    ns = dict(vars(H), mask=mask, init=init)
    exec(src, ns)

    def padded(a, c, shape, fill):
        out = torch.full(shape, fill, dtype=torch.bool if a.dtype == bool else torch.float32)
        out[:a.shape[0], :a.shape[1]] = torch.from_numpy(np.ascontiguousarray(a[..., c]))
        return out
    return ns["rl"](padded, y, k, iterations=iterations, tv=tv)


def pyramid_rl(rgb, k, coarse=50, fine=15, levels=2):
    """The highlight solver on the photo shrunk 2^(levels-1) times (a shrunk pixel a bound where
    any of its pixels was clipped), `coarse` steps; each level's result, enlarged, starts
    `fine` steps on the photo shrunk half as much, up to full size."""
    from deblurkit.deconv.blind import noise_sigma
    from deblurkit.deconv.highlights import tv_term
    from deblurkit.deconv.photo import resize_kernel
    import cv2
    y = unit(rgb, np.float32)
    term = tv_term(noise_sigma(to_gray(y)))
    clipped = (y >= CLIPPED).astype(np.float32)
    x = None
    for level in range(levels - 1, -1, -1):
        f = 2 ** level
        H, W = y.shape[:2]
        size = (max(round(W / f), 1), max(round(H / f), 1))
        ys = cv2.resize(y, size, interpolation=cv2.INTER_AREA) if f > 1 else y
        ms = cv2.resize(clipped, size, interpolation=cv2.INTER_AREA) > 0 if f > 1 else clipped > 0
        ks = resize_kernel(k, max(int(round(k.shape[0] / f)) | 1, 3)) if f > 1 else k
        init = None if x is None else cv2.resize(x, size, interpolation=cv2.INTER_LINEAR)
        x = rl_variant(ys, ks, coarse if init is None else fine, term, mask=ms, init=init, clamp=level == 0)
    return x


def timed(f):
    start = time.perf_counter()
    r = f()
    return r, time.perf_counter() - start


SOLVERS = {
    "bounds": lambda y, k: tv_bounds(y, k, **{a: OPT[a] for a in ("extra", "pad", "rate")}),
    "rl_tv": lambda y, k: rl_from_tv(y, k, OPT["iterations"]),
    "lift": lambda y, k: lifted_tv(y, k, OPT["scale"], OPT["iterations"]),
    "local": lambda y, k: local_blend(y, k, OPT["reach"]),
    "pyramid": lambda y, k: pyramid_rl(y, k, OPT["iterations"], OPT["fine"], OPT["levels"]),
}


def camera(job):
    i, path, gamma, gain = job
    torch.set_num_threads(1)
    k, y, x, base = camera_photo(i, path, gamma, gain)
    product, t_product = timed(lambda: deconvolve_photo(y, k))
    tried, t_tried = timed(lambda: SOLVERS[OPT["solver"]](y, k))
    tv, t_tv = timed(lambda: tv_deconvolve(y, k))
    return (L.score(tv.astype(np.float64), x) - base, L.score(product.astype(np.float64), x) - base,
            L.score(tried.astype(np.float64), x) - base, t_tv, t_product, t_tried, clipped_share(y))


if __name__ == "__main__":
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode != "camera":
        sys.exit("only the camera mode: python highlight_tv_bounds_probe.py camera N GAMMA GAIN solver=... [options]")
    args = [a for a in sys.argv[3:] if "=" not in a]
    for a in sys.argv[3:]:
        if "=" in a:
            key, value = a.split("=", 1)
            OPT[key] = value if key == "solver" else int(value) if key in ("extra", "iterations", "fine", "levels") else float(value)
    OPT["pad"] = bool(OPT["pad"])
    gamma, gain = float(args[0]), float(args[1])
    with Pool(2) as pool:
        rows = np.array(pool.map(camera, [(i, f, gamma, gain) for i, f in enumerate(clipped_photos(n))], chunksize=1))
    c = rows[:, 6] > 0.001
    print(f"{n} photos, gamma {gamma} gain {gain}, true kernel | TV step {rows[:, 0].mean():+.2f}  product {rows[:, 1].mean():+.2f}  "
          f"{OPT['solver']} {rows[:, 2].mean():+.2f} | over 0.1% clipped (n={c.sum()}): {rows[c, 0].mean():+.2f} / "
          f"{rows[c, 1].mean():+.2f} / {rows[c, 2].mean():+.2f} | s a photo {rows[:, 3].mean():.2f} / "
          f"{rows[:, 4].mean():.2f} / {rows[:, 5].mean():.2f} | {OPT}")
