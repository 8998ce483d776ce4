"""Memory-lean restoration gives exactly the results of the straightforward arithmetic.

The samplers and the restorer update full-image buffers in place, the input stays in its
compact source dtype and is converted tile by tile. These tests pin that down against a
reference written the plain way (fresh tensors, a float copy of the whole input), bit for
bit: the memory work must never change a pixel.
"""

import math

import numpy as np
import pytest
import torch

from deblurkit.diffusion import NoiseSchedule, ddim_sample, ddpm_sample
from deblurkit.io import encode_image, read_image
from deblurkit.io.write import _quantise
from deblurkit.restorer import Restorer, SamplingOptions, estimate_bytes_per_pixel, sample_generators
from deblurkit.tiling import TileGrid, pad_amounts, pad_image

from conftest import random_tiny_model

CPU = torch.device("cpu")


# ---- the reference: the textbook expressions, each step allocating fresh tensors ----------
def _ref_ddpm(denoise, schedule, z, noise, clip=None):
    betas, abars, T = schedule.betas(), schedule.alpha_bars(), schedule.steps
    for i in reversed(range(T)):
        ab, beta = float(abars[i]), float(betas[i])
        ab_prev = float(abars[i - 1]) if i > 0 else 1.0
        eps = denoise(z, math.sqrt(ab))
        x0 = (z - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)
        if clip is not None:
            x0 = clip(x0)
        if i > 0:
            c0 = math.sqrt(ab_prev) * beta / (1.0 - ab)
            c1 = math.sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab)
            sigma = math.sqrt(beta * (1.0 - ab_prev) / (1.0 - ab))
            z = c0 * x0 + c1 * z + sigma * noise(z)
        else:
            z = x0
    return z


def _ref_ddim(denoise, schedule, z, noise=None, clip=None):
    abars, T = schedule.alpha_bars(), schedule.steps
    for i in reversed(range(T)):
        ab = float(abars[i])
        ab_prev = float(abars[i - 1]) if i > 0 else 1.0
        eps = denoise(z, math.sqrt(ab))
        x0 = (z - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)
        if clip is not None:
            x0 = clip(x0)
            eps = (z - math.sqrt(ab) * x0) / math.sqrt(1.0 - ab)
        z = math.sqrt(ab_prev) * x0 + math.sqrt(1.0 - ab_prev) * eps if i > 0 else x0
    return z


def _reference_restore(model, image01, options, generators, tile, overlap):
    """The restorer as it was before the memory work: a float [-1, 1] copy of the whole
    input, fresh tensors at every step, noise drawn with torch.randn."""
    H, W = image01.shape[-2:]
    m = model.multiple
    ph, pw = pad_amounts(H, W, tile, m)
    y = pad_image(image01.float() * 2.0 - 1.0, ph, pw)
    grid = TileGrid.build(y.shape[-2], y.shape[-1], tile, overlap, multiple=m)
    per_batch = max(1, (tile * tile) // (grid.tile_h * grid.tile_w))
    with torch.inference_mode():
        x_init = grid.apply(lambda c: model.predict(c[0]), [y], per_batch).clone()
        schedule = options.schedule()
        shape = y.shape[1:]

        def noise(_like):
            return torch.stack([torch.randn(shape, generator=g) for g in generators])

        def denoise(z, level):
            def fn(c):
                zt, yt, xt = c
                return model.denoise(zt, torch.full((zt.shape[0],), level), yt, xt)
            return grid.apply(fn, [z, y, x_init], per_batch).clone()

        clip = lambda x0: (x_init + x0).clamp(-1.0, 1.0) - x_init  # noqa: E731
        z = noise(y) * math.sqrt(1.0 - float(schedule.alpha_bars()[-1]))
        sampler = _ref_ddpm if options.sampler == "ddpm" else _ref_ddim
        z0 = sampler(denoise, schedule, z, noise, clip=clip)
        return ((x_init + z0)[..., :H, :W] + 1.0).div(2.0).clamp(0.0, 1.0)


# ---- samplers --------------------------------------------------------------------------
@pytest.mark.parametrize("sampler,ref", [(ddpm_sample, _ref_ddpm), (ddim_sample, _ref_ddim)])
@pytest.mark.parametrize("with_clip", [False, True])
def test_in_place_samplers_match_the_textbook_expressions_bit_for_bit(sampler, ref, with_clip):
    schedule = NoiseSchedule(6, 0.7)
    cond = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(1))

    def denoise(z, level):  # a fresh tensor each call, as the contract says
        return torch.tanh(z * (1.5 - level) + cond)

    clip = (lambda x: x.clamp(-0.4, 0.4)) if with_clip else None
    z_start = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(2))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    expected = ref(denoise, schedule, z_start.clone(), lambda like: torch.randn(like.shape, generator=g1), clip=clip)
    got = sampler(denoise, schedule, z_start.clone(), lambda like: torch.randn(like.shape, generator=g2), clip=clip)
    assert torch.equal(got, expected)


def test_noise_drawn_into_a_slice_equals_a_fresh_draw():
    buf = torch.empty(2, 3, 17, 23)
    buf[1].normal_(generator=torch.Generator().manual_seed(9))
    assert torch.equal(buf[1], torch.randn(3, 17, 23, generator=torch.Generator().manual_seed(9)))


# ---- the restorer ----------------------------------------------------------------------
def _pixels(h, w, dtype, seed=0):
    rng = np.random.default_rng(seed)
    top = 65535 if dtype == np.uint16 else 255
    a = rng.integers(0, top + 1, (h, w, 3)).astype(dtype)
    return a, a.astype(np.float32) / float(top)  # the reader's float conversion


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
@pytest.mark.parametrize("h,w,tile", [(70, 90, 32), (20, 50, 32), (40, 40, 64)])
def test_restorer_matches_the_plain_reference_bit_for_bit(sampler, h, w, tile):
    # (20, 50) and (40, 40) are smaller than a tile on a side: the padded path.
    model = random_tiny_model()
    u8, f32 = _pixels(h, w, np.uint8)
    opts = SamplingOptions(steps=4, noise_ceiling=0.6, sampler=sampler, samples=2)
    r = Restorer(model, CPU, tile=tile, overlap=8)
    as_float = torch.from_numpy(f32).permute(2, 0, 1)[None]
    as_u8 = torch.from_numpy(u8).permute(2, 0, 1)[None]
    expected = _reference_restore(model, as_float, opts, sample_generators(5, "k", 2, CPU), r._tile_size(2), 8)
    for x in (as_float, as_u8):
        got = r.restore(x, opts, sample_generators(5, "k", 2, CPU))
        assert got.shape == expected.shape and torch.equal(got, expected)


def test_sixteen_bit_pixels_give_the_same_result_as_their_float_values():
    model = random_tiny_model()
    u16, f32 = _pixels(36, 44, np.uint16)
    r = Restorer(model, CPU, tile=32, overlap=8)
    opts = SamplingOptions(steps=3, noise_ceiling=0.5)
    a = r.restore(torch.from_numpy(u16).permute(2, 0, 1)[None], opts, sample_generators(0, "k", 1, CPU))
    b = r.restore(torch.from_numpy(f32).permute(2, 0, 1)[None], opts, sample_generators(0, "k", 1, CPU))
    assert torch.equal(a, b)


def test_predictor_only_matches_the_reference():
    model = random_tiny_model()
    u8, f32 = _pixels(50, 70, np.uint8, seed=3)
    r = Restorer(model, CPU, tile=32, overlap=8)
    got = r.restore(torch.from_numpy(u8).permute(2, 0, 1)[None], SamplingOptions(steps=0))
    y = torch.from_numpy(f32).permute(2, 0, 1)[None] * 2.0 - 1.0
    grid = TileGrid.build(50, 70, r._tile_size(1), 8, multiple=model.multiple)
    with torch.inference_mode():
        ref = ((grid.apply(lambda c: model.predict(c[0]), [y]) + 1.0) / 2.0).clamp(0.0, 1.0)
    assert torch.equal(got, ref)


def test_the_caller_input_is_not_modified():
    u8, _ = _pixels(40, 48, np.uint8)
    x = torch.from_numpy(u8.copy()).permute(2, 0, 1)[None]
    Restorer(random_tiny_model(), CPU, tile=32, overlap=8).restore(x, SamplingOptions(steps=2, noise_ceiling=0.5))
    assert np.array_equal(x[0].permute(1, 2, 0).numpy(), u8)


# ---- I/O ---------------------------------------------------------------------------------
def test_reader_keeps_the_source_dtype_and_rgb_is_the_old_float_conversion(tmp_path):
    u8, f32 = _pixels(30, 40, np.uint8)
    path = tmp_path / "a.png"
    path.write_bytes(encode_image(f32, "PNG"))
    img = read_image(path)
    assert img.pixels.dtype == np.uint8 and np.array_equal(img.pixels, u8)
    assert img.rgb.dtype == np.float32 and np.array_equal(img.rgb, f32)


@pytest.mark.parametrize("depth", [8, 16])
def test_banded_quantisation_equals_the_whole_image_expression(depth):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.1, 1.1, (1500, 1400, 3)).astype(np.float32)  # several bands
    top = 65535.0 if depth == 16 else 255.0
    expected = np.round(np.clip(x, 0.0, 1.0) * top).astype(np.uint16 if depth == 16 else np.uint8)
    got = _quantise(x, depth)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    strided = x.transpose(1, 0, 2)  # (a non-contiguous view, as the pipeline passes)
    assert np.array_equal(_quantise(strided, depth), expected.transpose(1, 0, 2))


# ---- samples that do not fit together run in groups ------------------------------------
def _limit_memory(monkeypatch, nbytes):
    import deblurkit.restorer as restorer_module

    monkeypatch.setattr(restorer_module, "available_memory", lambda device: nbytes)


def test_samples_that_do_not_fit_together_run_in_groups_with_a_note(monkeypatch):
    model = random_tiny_model()
    u8, _ = _pixels(40, 48, np.uint8)
    x = torch.from_numpy(u8).permute(2, 0, 1)[None]
    opts = SamplingOptions(steps=3, noise_ceiling=0.5, samples=5)
    r = Restorer(model, CPU, tile=32, overlap=8)
    together = r.restore(x, opts, sample_generators(2, "k", 5, CPU))
    px = 40 * 48 * 12
    act = lambda n: estimate_bytes_per_pixel(model) * 32 * 32 * n  # noqa: E731  (one 32 px tile per sample)
    _limit_memory(monkeypatch, px * (4 + 5 + 2 * 2) + act(2))  # room for the results plus 2 samples at a time
    assert r.samples_at_once(40, 48, 5) == 2
    notes, steps = [], []
    grouped = r.restore(x, opts, sample_generators(2, "k", 5, CPU), on_step=lambda i, t: steps.append((i, t)), on_note=notes.append)
    assert grouped.shape == together.shape
    assert (grouped - together).abs().max() < 1e-4  # each sample keeps its own noise
    assert len(notes) == 1 and "2 at a time" in notes[0] and "5 samples at 48x40" in notes[0]
    assert steps == [(i, 9) for i in range(1, 10)]  # 3 groups x 3 steps, counted through


def test_samples_that_do_not_fit_even_one_at_a_time_are_refused_up_front(monkeypatch):
    from deblurkit.errors import OutOfMemoryError

    r = Restorer(random_tiny_model(), CPU, tile=32, overlap=8)
    _limit_memory(monkeypatch, 40 * 48 * 12 * 20)
    with pytest.raises(OutOfMemoryError, match=r"for 100 sample\(s\) at 48x40.*use fewer --samples"):
        r.restore(torch.zeros(1, 3, 40, 48), SamplingOptions(steps=2, noise_ceiling=0.5, samples=100))


@pytest.mark.skipif(not __import__("deblurkit.devices", fromlist=["x"]).cpu_has_native_bf16(), reason="this CPU has no native bf16")
def test_a_two_pixel_wide_photo_in_bf16_gives_no_nan():
    # Seen before the minimum padding: NaN from bf16 convolutions on 1-pixel-wide levels.
    x = torch.rand(1, 300, 2, 3, generator=torch.Generator().manual_seed(0)).permute(0, 3, 1, 2)
    for trial in range(3):
        r = Restorer(random_tiny_model(), CPU, precision="bf16")
        for steps in (0, 2):
            out = r.restore(x, SamplingOptions(steps=steps, noise_ceiling=0.5), sample_generators(trial, "k", 1, CPU))
            assert out.shape == (1, 3, 300, 2) and torch.isfinite(out).all()


def test_large_photos_get_smaller_cpu_tiles():
    from deblurkit.restorer import LARGE_PHOTO

    r = Restorer(random_tiny_model(), CPU)
    small, large = r.auto_tile(1, 1280 * 720), r.auto_tile(1, LARGE_PHOTO + 1)
    assert large < small and large >= 64
