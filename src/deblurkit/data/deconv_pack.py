"""Training crops with their deconvolution, computed once and stored.

A kernel-aware predictor (ModelConfig.deconv_input) sees the blurry crop beside its
classical blind deconvolution (deblurkit.deconv). The estimator costs about a second per
256 px crop on a CPU core, several times a training step, so the crops are drawn from
the ordinary training sources once, deconvolved, and written as shards of
(sharp, blurry, deconvolved) arrays; training then samples them with flips and
rotations (`DeconvSamples`). Each crop depends only on (seed, index), so shards made in
parallel, or remade, are the same.

The kernel path's refiner (models/config.py refiner) learns from crops deconvolved as the
product deconvolves a photo (ESTIMATES "photo", `write_photo_shard`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..deconv import blind_deconvolution
from ..errors import ImageReadError
from ..io import write_atomic
from ..metrics.align import best_shift
from .datasets import _random_crop_box, Source

SHARD_GLOB = "deconv-*.npz"
# How a shard's crops were deconvolved: "crop", each crop on its own by the classical blind
# estimate and Wiener (a kernel-aware predictor's input, --deconv-input); "photo", by the
# product's kernel path (the photo-level estimate, its guard and the TV step), the sharp
# crop shifted onto the deconvolution (the refiner's data, --phase refiner).
ESTIMATES = {"crop": "crop by crop (blind estimate + Wiener)", "photo": "by the kernel path (photo estimate + TV)"}
# The largest shift (px) looked for between a kernel path crop's deconvolution and its sharp
# crop; the stored crops are this much smaller on every side. Wider than the benches' 10 px:
# a hand-shake path's centre of mass can sit 20 px or more off its kernel's centre.
PHOTO_ALIGN_WINDOW = 24


def pick_source(weights: list[float], seed: int, index: int) -> tuple[int, np.random.Generator]:
    """Which source crop `index` comes from, and the generator that then draws the crop
    (so a pack's crops can be told apart by source from (seed, index) alone)."""
    rng = np.random.default_rng([seed, index])
    w = np.asarray(weights, np.float64)
    return int(rng.choice(len(w), p=w / w.sum())), rng


def draw_sample(sources: list[Source], seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop `index` of the mixture: (sharp, blurry) float32 (H, W, 3) in [0, 1]."""
    which, rng = pick_source([s.weight for s in sources], seed, index)
    return sources[which].dataset.sample(rng)


def write_shard(out: Path, sources: list[Source], seed: int, indices: list[int], rule: str = "fixed") -> Path:
    """Deconvolve crops `indices` (Wiener weight rule `rule`) and write them as one .npz
    shard (atomically); the shard records the rule, and each crop's estimated kernel and
    whether the guard fell back (so a later rule can be tried without estimating again)."""
    sharp, blurry, deconv, kernels, fell_back = [], [], [], [], []
    for i in indices:
        x, y = draw_sample(sources, seed, i)
        d = blind_deconvolution(y, rule=rule)
        sharp.append(np.round(x * 255).astype(np.uint8))
        blurry.append(y.astype(np.float16))
        deconv.append(d.image.astype(np.float16))
        kernels.append(d.kernel.astype(np.float32) if d.kernel is not None else np.ones((1, 1), np.float32))
        fell_back.append(d.fell_back)
    side = max(k.shape[0] for k in kernels)  # one size for the stack (kernels are odd and centred)
    kernels = [np.pad(k, (side - k.shape[0]) // 2) for k in kernels]
    buf = io.BytesIO()
    np.savez(buf, sharp=np.stack(sharp), blurry=np.stack(blurry), deconv=np.stack(deconv), index=np.array(indices),
             wiener=np.array(rule), kernel=np.stack(kernels), fell_back=np.array(fell_back))
    write_atomic(out, buf.getvalue())  # an interrupted shard never appears under its name
    return out


def kernel_path_sample(x: np.ndarray, y: np.ndarray, window: int = PHOTO_ALIGN_WINDOW):
    """One training crop through the product's kernel path (kernel_path.decide without the
    predictor check, which needs a model; then its deconvolution): None where the photo
    would take the blind path or the best shift is at the window's edge (not found), else
    (sharp, blurry, d, kernel), each `window` px smaller on every side, the sharp crop
    shifted onto d by the best whole-pixel shift (as the benches score). An estimated
    kernel is centred on its mass, not where the true one was, so d can sit a few pixels
    off the sharp crop, and a loss on the unshifted pair teaches a network to blur (-0.8 dB
    on small kernels in docs/bench/kernel-first/refine_probe.md)."""
    import torch

    from ..kernel_path import KernelChoice, decide, deconvolution

    image = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1), np.float32))[None]
    report = decide(image, KernelChoice("auto"))
    if report.path != "kernel":
        return None
    d = deconvolution(image, report.kernel, report.estimated)
    dy, dx = best_shift(d, torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None], window)
    if window in (abs(dy), abs(dx)):
        return None
    h, w = x.shape[:2]
    m = window
    inside = (slice(m, h - m), slice(m, w - m))
    moved = (slice(m + dy, h - m + dy), slice(m + dx, w - m + dx))  # d[i + shift] goes with x[i]
    return x[inside], y[moved], d[0].permute(1, 2, 0).numpy()[moved], report.kernel


def write_photo_shard(out: Path, sources: list[Source], seed: int, indices: list[int]) -> int:
    """Crops `indices` through the kernel path (kernel_path_sample), written as one .npz
    shard (atomically) marked estimate "photo". Crops that would take the blind path, or
    whose shift was not found, are left out: `index` lists the crops kept, `drawn` every
    crop tried. Returns how many crops were kept."""
    sharp, blurry, deconv, kernels, kept = [], [], [], [], []
    side = None
    for i in indices:
        x, y = draw_sample(sources, seed, i)
        side = x.shape[0] - 2 * PHOTO_ALIGN_WINDOW
        got = kernel_path_sample(x, y)
        if got is None:
            continue
        xs, ys, ds, k = got
        sharp.append(np.round(xs * 255).astype(np.uint8))
        blurry.append(ys.astype(np.float16))
        deconv.append(ds.astype(np.float16))
        kernels.append(k.astype(np.float32))
        kept.append(i)
    if not kept:  # an empty shard still records that these crops were tried
        sharp, blurry, deconv = (np.zeros((0, side, side, 3), t) for t in (np.uint8, np.float16, np.float16))
        kernels = np.zeros((0, 1, 1), np.float32)
    else:
        k_side = max(k.shape[0] for k in kernels)
        kernels = np.stack([np.pad(k, (k_side - k.shape[0]) // 2) for k in kernels])
        sharp, blurry, deconv = np.stack(sharp), np.stack(blurry), np.stack(deconv)
    buf = io.BytesIO()
    np.savez(buf, sharp=sharp, blurry=blurry, deconv=deconv, index=np.array(kept, np.int64), drawn=np.array(indices),
             wiener=np.array("fixed"), estimate=np.array("photo"), kernel=kernels, fell_back=np.zeros(len(kept), bool))
    write_atomic(out, buf.getvalue())
    return len(kept)


def load_shard(path: Path):
    """One shard, opened without pickles; ImageReadError naming the file where it is not one."""
    try:
        shard = np.load(path, allow_pickle=False)
        if not {"sharp", "blurry", "deconv"} <= set(getattr(shard, "files", ())):
            raise ValueError("no sharp, blurry and deconv arrays")
        return shard
    except Exception as e:  # noqa: BLE001 -- untrusted bytes: any reader failure is this file's fault
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageReadError(f"{path}: not a deconvolved training shard ({reason[:160]})") from None


def shard_crop(shard) -> int:
    """The crop side a loaded shard was drawn at."""
    return int(shard["sharp"].shape[1])


def shard_estimate(shard) -> str:
    """How a loaded shard's crops were deconvolved (ESTIMATES; shards before photo ones: crop)."""
    return str(shard["estimate"]) if "estimate" in shard.files else "crop"


def shard_rule(shard) -> str:
    """The Wiener rule a loaded shard was deconvolved with (shards before the rule existed: fixed)."""
    return str(shard["wiener"]) if "wiener" in shard.files else "fixed"


class DeconvSamples:
    """A folder of shards as a training source: sample() gives (sharp, [blurry | deconv])
    with the deconvolution as three more channels, cropped to `crop`, and with `kernels`
    (a refiner told the kernel; kernel path shards only) the crop's estimated kernel third."""

    def __init__(self, root: str | Path, crop: int, kernels: bool = False):
        self.root = Path(root)
        shards = sorted(self.root.glob(SHARD_GLOB))
        if not shards:
            raise ImageReadError(f"{self.root}: no deconvolved training shards ({SHARD_GLOB})")
        parts = [load_shard(p) for p in shards]
        crops = {p: shard_crop(part) for p, part in zip(shards, parts)}
        if len(set(crops.values())) > 1:
            first = crops[shards[0]]
            odd = next(p for p, c in crops.items() if c != first)
            raise ImageReadError(f"{odd}: crops of {crops[odd]} px among shards of {first} px "
                                 f"({shards[0].name}); one --crop per folder")
        rules = {shard_rule(p) for p in parts}
        if len(rules) > 1:
            raise ImageReadError(f"{self.root}: shards deconvolved with different Wiener rules ({', '.join(sorted(rules))})")
        self.wiener = rules.pop()  # the rule a model trained on these must deconvolve with
        estimates = {shard_estimate(p) for p in parts}
        if len(estimates) > 1:
            raise ImageReadError(f"{self.root}: shards deconvolved crop by crop and by the kernel path together; "
                                 "one kind per folder")
        self.estimate = estimates.pop()
        self.sharp = np.concatenate([p["sharp"] for p in parts])
        self.inputs = np.concatenate([np.concatenate([p["blurry"], p["deconv"]], axis=-1) for p in parts])
        if not len(self.sharp):
            raise ImageReadError(f"{self.root}: its shards hold no crops (every crop took the blind path)")
        if min(self.sharp.shape[1:3]) < crop:
            raise ImageReadError(f"{self.root}: crops of {self.sharp.shape[1]} px are smaller than --crop {crop}")
        # loaded only for a refiner that uses them: they are up to 141 px a side per crop
        self.kernels = self._kernels(shards, parts) if kernels and self.estimate == "photo" else None
        self.crop = crop

    @staticmethod
    def _kernels(shards, parts) -> np.ndarray:
        """Each crop's estimated kernel (the refiner's condition, --refiner-kernel), centred in
        one side for all. ImageReadError naming the shard where its kernels are missing or do
        not match its crops."""
        for path, p in zip(shards, parts):
            k = p["kernel"] if "kernel" in p.files else np.zeros(0)
            if k.ndim != 3 or len(k) != len(p["sharp"]) or k.shape[1] != k.shape[2] or k.shape[1] % 2 == 0:
                raise ImageReadError(f"{path}: its kernels ({tuple(k.shape)}) are not one odd square per crop "
                                     f"({len(p['sharp'])})")
        side = max(p["kernel"].shape[-1] for p in parts)
        pads = [(side - p["kernel"].shape[-1]) // 2 for p in parts]
        return np.concatenate([np.pad(p["kernel"], ((0, 0), (a, a), (a, a))) for p, a in zip(parts, pads)])

    def __len__(self):
        return len(self.sharp)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        i = int(rng.integers(len(self.sharp)))
        h, w = self.sharp.shape[1:3]
        top, left = _random_crop_box(rng, h, w, self.crop)
        sl = (i, slice(top, top + self.crop), slice(left, left + self.crop))
        sharp, inputs = self.sharp[sl].astype(np.float32) / 255.0, self.inputs[sl].astype(np.float32)
        if self.kernels is not None:
            # the kernel goes through the crop's flips and turns with it (datasets.augment)
            return sharp, inputs, self.kernels[i]
        return sharp, inputs
