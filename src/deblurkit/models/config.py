"""Architecture hyper-parameters as plain dataclasses that round-trip through JSON.

A checkpoint stores `ModelConfig.to_json()` in its safetensors metadata, so a file
describes the network it holds and loading needs nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

# "msgd": icDPM with multiscale structure guidance (MSGD, Ren et al.); the guidance is
# also allowed on DvSR's denoiser as a configuration.
ARCHITECTURES = ("dvsr", "icdpm", "msgd")

# Denoiser objectives. "eps": DvSR Eq. 6 (L1 on the noise), with the `residual_std`
# skip below. "edm": Karras et al. 2022 preconditioning of a residual (x0) estimate --
# input, skip and output scalings from the noise level sigma and the residual's spread,
# an MSE loss that is equally well conditioned at every level, and a log-normal spread
# of training levels that reaches the very low levels long run-time schedules end on.
OBJECTIVES = ("eps", "edm")


def check_whole(obj, name: str, lo: int, hi: int, what: str = "") -> None:
    """A config field that must be an integer in [lo, hi] (checkpoint metadata is untrusted)."""
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{what}{name} must be an integer in [{lo}, {hi}], got {v!r}")


def check_number(obj, name: str, lo: float, hi: float, what: str = "") -> None:
    """A config field that must be a number in [lo, hi] (NaN fails)."""
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise ValueError(f"{what}{name} must be a number in [{lo:g}, {hi:g}], got {v!r}")


def frozen_from_dict(cls, d: dict, tuple_fields: tuple[str, ...], what: str):
    """Build a frozen config dataclass from JSON: lists back to tuples, nothing else guessed."""
    if not isinstance(d, dict):
        raise TypeError(f"{what} must be an object, not {type(d).__name__}")
    d = dict(d)
    for key in tuple_fields:
        if isinstance(d.get(key), list):
            d[key] = tuple(d[key])
    return cls(**d)


@dataclass(frozen=True)
class UNetConfig:
    """One fully convolutional U-Net (SR3-style residual blocks, no attention, no norm)."""

    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 1
    dropout: float = 0.0
    # Noise-level conditioning: sinusoidal features of `embed_scale * sqrt(alpha_bar)`.
    # 0 disables the conditioning (the initial predictor is unconditioned).
    embed_scale: float = 0.0
    # Space-to-depth factor of the stem (PixelUnshuffle in, PixelShuffle out): the U-Net
    # then runs at 1/s resolution with s^2 times the input channels, which cuts the
    # cost of the full-resolution level -- the dominant cost on a CPU -- by ~s^2.
    pixel_shuffle: int = 1
    # Levels (0 = the stem's resolution) whose residual blocks, and the middle blocks when
    # the deepest level is named, carry a Fourier branch (global receptive field; unet.py).
    fourier_levels: tuple[int, ...] = ()
    # Kernel conditioning (the kernel path's refiner, U(y, d, k)): the blur kernel, centred
    # in a square of kernel_grid x kernel_cell pixels and summed over cells of kernel_cell
    # pixels, enters every residual block through an embedding, as the noise level does in
    # the denoiser (unet.kernel_features). 0: not conditioned on a kernel.
    kernel_grid: int = 0
    kernel_cell: int = 4

    def __post_init__(self):
        # A checkpoint's metadata is untrusted: every field is checked for type and a sane
        # range before anything is built from it.
        for name, lo, hi in (("in_channels", 1, 64), ("out_channels", 1, 64), ("base_channels", 1, 1024),
                             ("num_res_blocks", 1, 32), ("pixel_shuffle", 1, 16), ("kernel_grid", 0, 64),
                             ("kernel_cell", 1, 32)):
            check_whole(self, name, lo, hi)
        m = self.channel_mults
        if (not isinstance(m, tuple) or not 1 <= len(m) <= 8
                or any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 32 for x in m)):
            raise ValueError(f"channel_mults must be 1 to 8 integers in [1, 32], got {m!r}")
        f = self.fourier_levels
        if (not isinstance(f, tuple) or len(set(f)) != len(f)
                or any(isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < len(m) for x in f)):
            raise ValueError(f"fourier_levels must be distinct levels in [0, {len(m) - 1}], got {f!r}")
        for name, lo, hi in (("dropout", 0.0, 0.99), ("embed_scale", 0.0, 1e7)):
            check_number(self, name, lo, hi)

    @property
    def multiple(self) -> int:
        """Input height and width must be divisible by this (one halving per extra level)."""
        return self.pixel_shuffle * 2 ** (len(self.channel_mults) - 1)

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        return frozen_from_dict(cls, d, ("channel_mults", "fourier_levels"), "a network config")


@dataclass(frozen=True)
class GuidanceConfig:
    """MSGD's multiscale structure guidance (Sec. 3.2): the grey input at 1/s for each
    scale s, plus a little Gaussian noise in training, through a small convolutional
    network per scale (no down- or upsampling inside), whose features are regressed
    to the grey sharp image at that scale and projected onto the denoiser's encoder."""

    scales: tuple[int, ...] = (2, 4, 8)
    channels: int = 16
    num_blocks: int = 2
    # Std of the training-time noise on the grey input, on the [-1, 1] scale.
    noise_std: float = 0.02

    def __post_init__(self):
        s = self.scales
        if (not isinstance(s, tuple) or not 1 <= len(s) <= 6 or len(set(s)) != len(s)
                or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 or x > 64 or x & (x - 1) for x in s)):
            raise ValueError(f"guidance scales must be 1 to 6 distinct powers of two in [1, 64], got {s!r}")
        for name, hi in (("channels", 512), ("num_blocks", 16)):
            check_whole(self, name, 1, hi, "guidance ")
        check_number(self, "noise_std", 0.0, 1.0, "guidance ")

    @classmethod
    def from_dict(cls, d: dict) -> "GuidanceConfig":
        return frozen_from_dict(cls, d, ("scales",), "the guidance config")


def guidance_levels(guidance: GuidanceConfig, denoiser: UNetConfig) -> list[int]:
    """The denoiser encoder level each guidance scale feeds: level k runs at
    1 / (pixel_shuffle * 2^k) of the input, so scale s meets level log2(s / pixel_shuffle)."""
    levels = []
    for s in guidance.scales:
        k = (s // denoiser.pixel_shuffle).bit_length() - 1
        if s % denoiser.pixel_shuffle or not 0 <= k < len(denoiser.channel_mults):
            raise ValueError(
                f"guidance scale {s} matches no level of the denoiser (its levels run at 1/"
                + ", 1/".join(str(denoiser.pixel_shuffle * 2**i) for i in range(len(denoiser.channel_mults))) + ")")
        levels.append(k)
    return levels


# Typical spread of the DvSR residual x0 - g(y) on the [-1, 1] scale (measured 0.13-0.2 on
# validation crops early in training); for icDPM the "residual" is the image itself.
DEFAULT_RESIDUAL_STD = 0.15
ICDPM_RESIDUAL_STD = 0.5

# WaveGrad's choice: the continuous level sqrt(alpha_bar) in [0, 1] is scaled by 5000
# before the sinusoidal embedding, so the fastest features resolve level changes of
# ~1e-4 -- needed because most of the useful schedule lives at sqrt(alpha_bar) near 1.
DEFAULT_EMBED_SCALE = 5000.0


# The refiner (kernel path): [y, d, d - y], the blurry photo, its deconvolution with the
# estimated kernel and their difference (where the deconvolution changed the photo).
REFINER_INPUTS = 9


# The refiner sees the kernel in a 96 px square (24 cells of 4 px): the kernels it is
# trained on (estimated on crops, 75 px windows) fit; a longer one's tails are cut off.
REFINER_KERNEL_GRID = 24
REFINER_KERNEL_CELL = 4


def refiner_config(base_channels: int = 32, kernel: bool = False) -> UNetConfig:
    """The kernel path's refiner: a half-resolution U-Net (pixel shuffle 2) with one block per
    level, 2.3 M parameters at 32 channels and 61 ms per 512 px square in bf16 on this
    project's 2-core CPU (the medium predictor: 96 ms). With two blocks per level (85 ms) a
    12 MP photo's kernel path took 2.02x the blind path's time, over the 2x it may take.
    `kernel`: conditioned on the kernel d was deconvolved with (kernel_grid)."""
    return UNetConfig(in_channels=REFINER_INPUTS, base_channels=base_channels, channel_mults=(1, 2, 4), num_res_blocks=1,
                      pixel_shuffle=2, kernel_grid=REFINER_KERNEL_GRID if kernel else 0, kernel_cell=REFINER_KERNEL_CELL)


def predictor_inputs(scales: int, deconv_input: bool) -> int:
    """Channels of the predictor's input: y, the coarser result (coarse to fine), the
    deconvolution (kernel-aware)."""
    return (6 if scales > 1 else 3) + (3 if deconv_input else 0)


@dataclass(frozen=True)
class ModelConfig:
    """The whole restoration model: an optional initial predictor g(y) and a denoiser f."""

    arch: str = "dvsr"
    predictor: UNetConfig | None = field(default_factory=lambda: UNetConfig(base_channels=32))
    denoiser: UNetConfig = field(
        default_factory=lambda: UNetConfig(
            in_channels=6, base_channels=16, embed_scale=DEFAULT_EMBED_SCALE
        )
    )

    # Preconditioning (EDM's c_skip idea): the denoiser's output is added to the noise
    # estimate that is optimal if the residual were Gaussian with this standard deviation,
    #   eps_hat = sqrt(1 - l^2) / (l^2 s^2 + 1 - l^2) * z_t + F(z_t, l, y),  l = sqrt(alpha_bar),
    # so the backbone F learns only the correction and never has to carry z_t through
    # its narrow first level. 0 disables it (plain eps prediction).
    residual_std: float = DEFAULT_RESIDUAL_STD
    objective: str = "eps"
    # The denoiser also sees the initial prediction g(y) (9 input channels): a small
    # denoiser cannot recompute g, and the residual x - g(y) depends on it directly.
    condition_on_prediction: bool = False
    # Multiscale structure guidance on the denoiser (required for "msgd", optional for "dvsr").
    guidance: GuidanceConfig | None = None
    # Coarse-to-fine prediction (as in Nah et al. 2017 / SRN-DeblurNet, with one shared
    # network): g runs on the input halved n-1 times, then on each finer scale with the
    # coarser result upsampled as a second input (6 channels). A 120 px shake is 30 px at
    # a quarter of the size, where the network can undo it. 1: the plain predictor.
    predictor_scales: int = 1
    # Coarse to fine with a network of its own per scale (as in Nah et al. 2017) instead of
    # one shared: three times the predictor's weights at the same cost per pixel, so the
    # coarse scales can specialise in large shakes and the full size in the small ones.
    separate_scale_predictors: bool = False
    # Kernel-aware prediction: the predictor also sees the input's classical blind
    # deconvolution (deblurkit.deconv: an L0-prior kernel estimate, then Wiener), three more
    # channels at every scale. On real shake the estimator finds kernels the network does
    # not (docs/experiments/probes/blind_kohler.txt); the network learns where to trust it.
    deconv_input: bool = False
    # Kernel-aware with a gate: the predictor also outputs a per-pixel weight a (a fourth
    # channel) and g(y) = y + U + a (deconv - y), so "take the deconvolution here" is one
    # smooth map to learn, not a copy of its every edge through the network (a kernel-aware
    # predictor kept about half of the deconvolution's gain; docs/training/README.md).
    deconv_gate: bool = False
    # The deconvolution's Wiener weight rule (deblurkit.deconv WIENER_RULES): a model
    # deconvolves at run time as its training crops were deconvolved.
    deconv_wiener: str = "fixed"
    # The kernel path's refiner R (issue 35): where the photo's kernel is estimated (or
    # given) and it is deconvolved to d, the networks start from d + R(y, d, d - y) instead
    # of d itself, R trained on the product's own deconvolutions of training photos
    # (`deblur deconv-pack --estimate photo`, `deblur train --phase refiner`). None: they
    # start from d. The blind path never uses it.
    refiner: UNetConfig | None = None

    @property
    def predictor_inputs(self) -> int:
        return predictor_inputs(self.predictor_scales, self.deconv_input)

    @property
    def predictor_outputs(self) -> int:
        return 4 if self.deconv_gate else 3

    @property
    def denoiser_inputs(self) -> int:
        return 9 if self.condition_on_prediction else 6

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; known: {', '.join(ARCHITECTURES)}")
        if self.arch == "dvsr" and self.predictor is None:
            raise ValueError("arch 'dvsr' needs a predictor config")
        if self.arch in ("icdpm", "msgd") and self.predictor is not None:
            raise ValueError(f"arch {self.arch!r} has no predictor (the residual is taken with respect to 0)")
        if self.arch == "msgd" and self.guidance is None:
            raise ValueError("arch 'msgd' needs a guidance config")
        if self.arch == "icdpm" and self.guidance is not None:
            raise ValueError("arch 'icdpm' has no guidance (that is arch 'msgd')")
        if self.guidance is not None:
            guidance_levels(self.guidance, self.denoiser)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; known: {', '.join(OBJECTIVES)}")
        check_whole(self, "predictor_scales", 1, 4)
        if self.deconv_input and self.predictor is None:
            raise ValueError("deconv_input needs a predictor")
        from ..deconv.blind import WIENER_RULES  # lazily: OpenCV is not needed to read a config

        if self.deconv_wiener not in WIENER_RULES:
            raise ValueError(f"deconv_wiener must be {' or '.join(WIENER_RULES)}, not {self.deconv_wiener!r}")
        if self.deconv_wiener != "fixed" and not self.deconv_input:
            raise ValueError("deconv_wiener needs deconv_input")
        if self.deconv_gate and not self.deconv_input:
            raise ValueError("deconv_gate needs deconv_input (the gate weighs the deconvolution)")
        if self.predictor is not None and self.predictor.out_channels != self.predictor_outputs:
            raise ValueError(f"this predictor outputs {self.predictor_outputs} channels "
                             f"({'a correction and the deconvolution gate' if self.deconv_gate else 'a correction'}), "
                             f"not {self.predictor.out_channels}")
        if self.separate_scale_predictors and self.predictor_scales == 1:
            raise ValueError("separate_scale_predictors needs predictor_scales > 1")
        if self.predictor is not None and self.predictor.in_channels != self.predictor_inputs:
            parts = ["y"] + (["coarser result"] if self.predictor_scales > 1 else []) + (["deconvolution"] if self.deconv_input else [])
            raise ValueError(f"this predictor takes [{', '.join(parts)}] (in_channels {self.predictor_inputs}), "
                             f"not {self.predictor.in_channels}")
        if self.condition_on_prediction and self.predictor is None:
            raise ValueError("condition_on_prediction needs a predictor")
        for name in ("predictor", "denoiser"):
            net = getattr(self, name)
            if net is not None and net.kernel_grid:
                raise ValueError(f"only the refiner is conditioned on a kernel, not the {name}")
        if self.refiner is not None:
            if self.predictor is None:
                raise ValueError("a refiner needs a predictor (the kernel path is for predict-and-refine models)")
            if (self.refiner.in_channels, self.refiner.out_channels) != (REFINER_INPUTS, 3) or self.refiner.embed_scale:
                raise ValueError(f"the refiner takes [y, d, d - y] ({REFINER_INPUTS} channels), outputs a correction "
                                 "(3 channels) and has no noise-level embedding")
        if not 0.0 <= self.residual_std <= 10.0:  # also rejects NaN
            raise ValueError(f"residual_std must be in [0, 10], got {self.residual_std!r}")
        if self.objective == "edm" and self.residual_std <= 0:
            raise ValueError("the edm objective needs residual_std > 0 (the residual's spread)")
        if self.denoiser.in_channels != self.denoiser_inputs or self.denoiser.embed_scale <= 0:
            raise ValueError(
                f"the denoiser takes [z_t, y{', g(y)' if self.condition_on_prediction else ''}] "
                f"({self.denoiser_inputs} channels) and a noise-level embedding"
            )

    @property
    def multiple(self) -> int:
        m = self.denoiser.multiple
        if self.predictor is not None:
            m = max(m, self.predictor.multiple * 2 ** (self.predictor_scales - 1))  # all are powers of two
        if self.guidance is not None:
            m = max(m, *self.guidance.scales)
        if self.refiner is not None:
            m = max(m, self.refiner.multiple)
        return m

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        if not isinstance(d, dict):
            raise TypeError(f"the model config must be an object, not {type(d).__name__}")
        for key, kind in (("residual_std", (int, float)), ("objective", str), ("condition_on_prediction", bool), ("arch", str),
                          ("predictor_scales", int), ("separate_scale_predictors", bool), ("deconv_input", bool),
                          ("deconv_gate", bool), ("deconv_wiener", str)):
            if key in d and (not isinstance(d[key], kind) or (kind != bool and isinstance(d[key], bool))):
                raise TypeError(f"{key} has the wrong type ({type(d[key]).__name__})")
        pred = d.get("predictor")
        guide = d.get("guidance")
        refiner = d.get("refiner")
        return cls(
            arch=d["arch"],
            predictor=UNetConfig.from_dict(pred) if pred is not None else None,
            denoiser=UNetConfig.from_dict(d["denoiser"]),
            residual_std=float(d.get("residual_std", 0.0)),
            objective=str(d.get("objective", "eps")),
            condition_on_prediction=bool(d.get("condition_on_prediction", False)),
            guidance=GuidanceConfig.from_dict(guide) if guide is not None else None,
            predictor_scales=d.get("predictor_scales", 1),
            separate_scale_predictors=d.get("separate_scale_predictors", False),
            deconv_input=d.get("deconv_input", False),
            deconv_gate=d.get("deconv_gate", False),
            deconv_wiener=d.get("deconv_wiener", "fixed"),
            refiner=UNetConfig.from_dict(refiner) if refiner is not None else None,
        )

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        return cls.from_dict(json.loads(text))


def icdpm_config(denoiser: UNetConfig | None = None) -> ModelConfig:
    """The icDPM baseline: the denoiser alone, sampling the clean image itself."""
    return ModelConfig(arch="icdpm", predictor=None, denoiser=denoiser or ModelConfig().denoiser, residual_std=ICDPM_RESIDUAL_STD)


def msgd_config(denoiser: UNetConfig | None = None, guidance: GuidanceConfig | None = None) -> ModelConfig:
    """MSGD: the icDPM denoiser with multiscale structure guidance."""
    return replace(icdpm_config(denoiser), arch="msgd", guidance=guidance or GuidanceConfig())


def tiny_config(arch: str = "dvsr", guided: bool = False, refined: bool | str = False) -> ModelConfig:
    """A very small model for tests and smoke runs (random weights are fine); `refined`: with
    a kernel path refiner (dvsr; "kernel": one told the kernel)."""
    den = UNetConfig(in_channels=6, base_channels=8, channel_mults=(1, 2), embed_scale=DEFAULT_EMBED_SCALE)
    pred = UNetConfig(base_channels=8, channel_mults=(1, 2)) if arch == "dvsr" else None
    std = DEFAULT_RESIDUAL_STD if arch == "dvsr" else ICDPM_RESIDUAL_STD
    # Levels at 1/1 and 1/2: the guidance scales that meet them.
    guide = GuidanceConfig(scales=(1, 2), channels=4, num_blocks=1) if (arch == "msgd" or guided) else None
    return ModelConfig(arch=arch, predictor=pred, denoiser=den, residual_std=std, guidance=guide,
                       refiner=refiner_config(8, kernel=refined == "kernel") if refined else None)
