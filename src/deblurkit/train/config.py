"""Training configuration: one dataclass, loadable from a TOML file, recorded in checkpoints."""

from __future__ import annotations

import math

import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import UsageError
from ..models.config import predictor_inputs, refiner_config
from ..models import (DEFAULT_EMBED_SCALE, OBJECTIVES, GuidanceConfig, HIDiffConfig, ModelConfig, UNetConfig, icdpm_config, msgd_config,
                      tiny_config, tiny_hidiff_config)

E = DEFAULT_EMBED_SCALE
# The edm objective conditions on log(sigma) / 4, about -2.5..1; scaled so the fastest
# sinusoidal features resolve ~1% changes of sigma.
EDM_EMBED_SCALE = 100.0


# MSGD's guidance sized for the CPU: 16 features and 2 residual blocks per scale (the
# paper's Guide-S has 32); at 1/2, 1/4 and 1/8 of the input it costs about a fifth of the
# small denoiser's per-step work, and it runs once per image, not per step.
GUIDANCE_RAMP_FRACTION = 0.06
CPU_GUIDANCE = GuidanceConfig(scales=(2, 4, 8), channels=16, num_blocks=2)


def model_size(arch: str, size: str, guidance: bool = False, objective: str | None = None) -> ModelConfig:
    """Named sizes. DvSR puts the capacity in the predictor (it runs once) and keeps the
    denoiser small (it runs every step). `guidance`: add MSGD's structure guidance to a
    DvSR denoiser (arch "msgd" always has it). `objective`: "eps" or "edm" in place of the
    size's own (None keeps it)."""
    if arch != "dvsr" and guidance:
        raise UsageError("--guidance is for --arch dvsr (arch msgd always has it, icdpm never)")
    if arch == "hidiff":
        if objective is not None:
            raise UsageError("--objective is for the pixel-diffusion families (HI-Diff's latent prior has its own)")
        return _hidiff_sized(size)
    cfg = _with_objective(_sized(arch, size), objective)
    if guidance:
        guide = tiny_config(arch, guided=True).guidance if size == "tiny" else _fitting(CPU_GUIDANCE, cfg.denoiser)
        cfg = replace(cfg, guidance=guide)
    return cfg


def _hidiff_sized(size: str) -> HIDiffConfig:
    """HI-Diff sizes: tiny (tests), small (CPU: width 24, blocks 1-2-2-3, a 2x stem; the
    paper's 48 / 3-5-5-6 at full resolution is ~30x the work), base (the paper's)."""
    if size == "tiny":
        return tiny_hidiff_config()
    if size == "small":
        return HIDiffConfig()
    if size == "base":
        return HIDiffConfig(dim=48, blocks=(3, 5, 5, 6), heads=(1, 2, 4, 8), refinement_blocks=4, pixel_shuffle=1,
                            latent_dim=256, encoder_width=64, encoder_blocks=6, denoiser_blocks=5)
    raise UsageError(f"--size {size}: HI-Diff comes in tiny, small or base")


def _with_objective(cfg: ModelConfig, objective: str | None) -> ModelConfig:
    """The config trained with another denoising objective. The two condition on different
    noise variables (sqrt(alpha_bar) for eps, log(sigma) / 4 for edm), so the noise
    embedding's scale goes with the objective."""
    if objective is None or objective == cfg.objective:
        return cfg
    if objective not in OBJECTIVES:
        raise UsageError(f"--objective {objective}: expected one of {', '.join(OBJECTIVES)}")
    scale = EDM_EMBED_SCALE if objective == "edm" else E
    return replace(cfg, objective=objective, denoiser=replace(cfg.denoiser, embed_scale=scale))


def _fitting(guide: GuidanceConfig, den: UNetConfig) -> GuidanceConfig:
    """The guidance with only the scales that meet a level of this denoiser."""
    runs_at = {den.pixel_shuffle * 2**k for k in range(len(den.channel_mults))}
    return replace(guide, scales=tuple(s for s in guide.scales if s in runs_at))


def _sized(arch: str, size: str) -> ModelConfig:
    if size == "tiny":
        return tiny_config(arch)
    if size == "small":  # CPU-trainable; both nets run at half resolution after a 2x space-to-depth stem
        pred = UNetConfig(base_channels=32, channel_mults=(1, 2, 3, 4), num_res_blocks=1, pixel_shuffle=2)
        den = UNetConfig(in_channels=6, base_channels=16, channel_mults=(1, 2, 4), embed_scale=E, pixel_shuffle=2)
    elif size == "medium":
        # Chosen by measured CPU training speed (bf16, batch 8, 128 px): a deeper, wider
        # predictor (receptive field for long blur) at 2.5 steps/s, 2.2 s fp32 for 1280x720;
        # an EDM-preconditioned denoiser that also sees g(y).
        pred = UNetConfig(base_channels=32, channel_mults=(1, 2, 4, 8), num_res_blocks=2, pixel_shuffle=2)
        den = UNetConfig(in_channels=9, base_channels=24, channel_mults=(1, 2, 4), embed_scale=EDM_EMBED_SCALE, pixel_shuffle=2)
        if arch != "dvsr":
            raise UsageError("--size medium is a DvSR configuration (use --arch dvsr)")
        return ModelConfig(arch=arch, predictor=pred, denoiser=den, residual_std=0.1, objective="edm", condition_on_prediction=True)
    elif size == "base":  # for a GPU
        pred = UNetConfig(base_channels=64, channel_mults=(1, 2, 3, 4), num_res_blocks=2)
        den = UNetConfig(in_channels=6, base_channels=32, channel_mults=(1, 2, 4), embed_scale=E)
    else:
        raise UsageError(f"--size {size}: expected tiny, small, medium or base")
    if arch == "dvsr":
        return ModelConfig(arch=arch, predictor=pred, denoiser=den)
    if arch == "msgd":
        return msgd_config(den, _fitting(CPU_GUIDANCE, den))
    return icdpm_config(den)


@dataclass
class DataSpec:
    path: str
    kind: str  # "sharp" (synthetic blur), "pairs", "pack" or "deconv" (precomputed kernel-aware crops)
    weight: float = 1.0


@dataclass
class TrainConfig:
    out: str = "runs/default"
    data: list[DataSpec] = field(default_factory=list)
    val: str | None = None
    val_limit: int = 24
    val_crop: int = 192
    val_steps: int = 10
    arch: str = "dvsr"
    size: str = "small"
    steps: int = 10000
    batch: int = 8
    crop: int = 128
    lr: float = 2e-4
    min_lr_ratio: float = 0.1
    warmup: int = 200
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    # Weight of the direct L1 loss on the initial predictor g(y) (0 = pure DvSR Eq. 6);
    # see deblur.diffusion.loss for why the default is not 0.
    predictor_loss_weight: float = 1.0
    # Weight of the frequency-domain L1 term on g(y) (edm objective or phase "predictor").
    fft_loss_weight: float = 0.0
    # What the steps train: "joint", "predictor" (alone) or "denoiser" (g frozen).
    phase: str = "joint"
    # Checkpoint to start from (matching tensors are copied), e.g. a predictor-phase run.
    init: str | None = None
    seed: int = 0
    log_every: int = 10
    val_every: int = 500
    ckpt_every: int = 250
    precision: str = "fp32"  # bf16 autocast (CPU or GPU) / fp16 (GPU); master weights, loss and EMA stay fp32
    device: str = "auto"
    threads: int = 0  # CPU threads (0 = torch default)
    workers: int = 0  # data worker processes (blur synthesis off the training process; for GPUs)
    data_limit: int | None = None  # cap images per source (quick runs, tests)
    # MSGD's structure guidance on a DvSR denoiser (arch "msgd" always has it).
    guidance: bool = False
    # Guided models: the denoising loss's weight ramps from 0 to 1 over this many steps;
    # None: 6% of `steps`, MSGD's ratio (its first 60k of 1M iterations). Give it
    # explicitly to re-time a run with --steps without moving the warm start.
    guidance_ramp: int | None = None
    # HI-Diff's training stage: 1 (LE + transformer) or 2 (latent DM + transformer, from a
    # stage-one checkpoint given with `init`).
    stage: int = 1
    # Denoising objective in place of the size's own: "eps" (DvSR Eq. 6 / DDPM) or "edm"
    # (Karras et al.'s preconditioned x0 estimate, which is usable after far fewer steps).
    objective: str | None = None
    # The synthetic blur for the sharp sources: "handheld" (real hand shake, shake.py) or
    # "legacy" (what dvsr-medium-v1..v6 trained on; configs written before this field).
    blur_model: str = "handheld"
    # Handheld model only: cap the shake's extent (px) below the model's 120, for a
    # curriculum (small shakes first); None keeps the model's range.
    blur_max_extent: float | None = None
    # DvSR: predictor levels that get a Fourier branch (global receptive field for large
    # shakes; models/unet.py), e.g. [1, 2, 3]; None keeps the size's (none).
    fourier_levels: list[int] | None = None
    # DvSR: coarse-to-fine prediction over this many scales (models/config.py); None keeps
    # the size's (1, the plain predictor).
    predictor_scales: int | None = None
    # DvSR coarse to fine: a network of its own per scale instead of one shared.
    separate_scales: bool = False
    # DvSR: a kernel-aware predictor that also sees the input's classical blind
    # deconvolution (models/config.py deconv_input); trains on "deconv" data only.
    deconv_input: bool = False
    # With --deconv-input: the predictor also outputs a per-pixel weight of the
    # deconvolution (models/config.py deconv_gate).
    deconv_gate: bool = False
    # With --deconv-gate: the gate's value where a new run starts (0: the network it came
    # from; 1: the deconvolution plus that network's correction), set on the gate channel's
    # output bias. A gate started at 0 stayed near 0.05-0.1 (docs/training/README.md).
    deconv_gate_start: float = 0.0
    # With --deconv-input: the deconvolution's Wiener rule (models/config.py deconv_wiener);
    # the --deconv shards must have been made with the same.
    deconv_wiener: str = "fixed"
    # DvSR: the model has the kernel path's refiner (models/config.py refiner); phase
    # "refiner" trains it (alone, on `deblur deconv-pack --estimate photo` data) and implies it.
    refiner: bool = False
    # ... told the kernel d was deconvolved with (U(y, d, k): models/config.py refiner_config).
    # Off by default: on this CPU's 1,243-1,848 crops it lost 0.09-0.23 dB on 31-79 px kernels
    # against the same refiner without it (docs/bench/kernel-first/README.md, thirteenth session).
    refiner_kernel: bool = False

    def __post_init__(self):
        if self.phase == "refiner":  # recorded as such, so a later phase or a resume sees the model's shape
            self.refiner = True

    def blur_config(self):
        from ..data.blur import blur_model

        try:
            cfg = blur_model(self.blur_model)
        except ValueError as e:
            raise UsageError(f"--blur-model: {e}") from None
        if self.blur_max_extent is not None:
            lo = cfg.handheld.extent[0]
            if cfg.shake != "handheld" or not (lo < self.blur_max_extent <= 1000):
                raise UsageError(f"--blur-max-extent {self.blur_max_extent:g}: for --blur-model handheld, "
                                 f"in ({lo:g}, 1000] px")
            cfg = replace(cfg, handheld=replace(cfg.handheld, extent=(lo, float(self.blur_max_extent))))
        return cfg

    def model_config(self) -> ModelConfig | HIDiffConfig:
        cfg = model_size(self.arch, self.size, self.guidance, self.objective)
        if self.fourier_levels is not None:
            if getattr(cfg, "predictor", None) is None:
                raise UsageError("--fourier-levels is for DvSR's predictor (--arch dvsr)")
            try:
                cfg = replace(cfg, predictor=replace(cfg.predictor, fourier_levels=tuple(self.fourier_levels)))
            except (ValueError, TypeError) as e:
                raise UsageError(f"--fourier-levels: {e}") from None
        if self.predictor_scales is not None:
            n = self.predictor_scales
            if getattr(cfg, "predictor", None) is None or isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 4:
                raise UsageError(f"--predictor-scales {n}: a whole number in [1, 4], for DvSR's predictor (--arch dvsr)")
            cfg = replace(cfg, predictor_scales=n, predictor=replace(cfg.predictor, in_channels=predictor_inputs(n, False)))
        if self.separate_scales:
            if getattr(cfg, "predictor_scales", 1) < 2:
                raise UsageError("--separate-scales needs --predictor-scales 2 or more (dvsr)")
            cfg = replace(cfg, separate_scale_predictors=True)
        if self.deconv_input:
            if getattr(cfg, "predictor", None) is None:
                raise UsageError("--deconv-input is for DvSR's predictor (--arch dvsr)")
            cfg = replace(cfg, deconv_input=True,
                          predictor=replace(cfg.predictor, in_channels=predictor_inputs(cfg.predictor_scales, True)))
        if not math.isfinite(self.deconv_gate_start):
            raise UsageError(f"--deconv-gate-start {self.deconv_gate_start}: must be a finite number")
        if self.deconv_gate:
            if not self.deconv_input:
                raise UsageError("--deconv-gate weighs the deconvolution: add --deconv-input")
            cfg = replace(cfg, deconv_gate=True, predictor=replace(cfg.predictor, out_channels=4))
        elif self.deconv_gate_start:
            raise UsageError("--deconv-gate-start is the gate's first value: add --deconv-gate")
        from ..deconv.blind import WIENER_RULES

        if self.deconv_wiener not in WIENER_RULES:
            raise UsageError(f"--deconv-wiener {self.deconv_wiener}: expected {' or '.join(WIENER_RULES)}")
        if self.deconv_wiener != "fixed":
            if not self.deconv_input:
                raise UsageError("--deconv-wiener is the deconvolution's rule: add --deconv-input")
            cfg = replace(cfg, deconv_wiener=self.deconv_wiener)
        if self.refiner:
            if getattr(cfg, "predictor", None) is None:
                raise UsageError("--phase refiner / --refiner: the kernel path's refiner is for DvSR (--arch dvsr)")
            if self.deconv_input:
                raise UsageError("--phase refiner / --refiner: a refiner starts from the kernel path's deconvolution; "
                                 "--deconv-input is the other design (a predictor that sees a crop's own)")
            # as wide as the size's predictor (the 12 MP time budget was measured at medium's 32 channels)
            cfg = replace(cfg, refiner=refiner_config(cfg.predictor.base_channels, kernel=self.refiner_kernel))
        elif self.refiner_kernel:
            raise UsageError("--refiner-kernel is the refiner's: add --phase refiner or --refiner")
        return cfg

    def guidance_ramp_steps(self) -> int:
        """Steps of the warm start (0 for unguided models: the denoising weight stays 1)."""
        if self.arch != "msgd" and not self.guidance:
            return 0
        return round(GUIDANCE_RAMP_FRACTION * self.steps) if self.guidance_ramp is None else self.guidance_ramp

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UsageError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        d = dict(d)
        d["data"] = [DataSpec(**x) for x in d.get("data", [])]
        return cls(**d)

    @classmethod
    def from_toml(cls, path: Path) -> "TrainConfig":
        try:
            return cls.from_dict(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError, TypeError) as e:
            raise UsageError(f"{path}: cannot read training config ({e})") from None
