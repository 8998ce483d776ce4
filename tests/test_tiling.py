import numpy as np
import pytest
import torch
from torch.nn import functional as F

from deblurkit.restorer import Restorer, SamplingOptions, sample_generators
from deblurkit.tiling import TileGrid, pad_amounts, pad_image, ramp, tile_starts

from conftest import random_tiny_model, smooth_image


@pytest.mark.parametrize("length,tile,overlap", [(100, 32, 8), (64, 64, 16), (65, 64, 16), (10, 64, 8), (257, 96, 0)])
def test_tile_starts_cover_everything(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    covered = np.zeros(length, bool)
    t = min(tile, length)
    for s in starts:
        covered[s : s + t] = True
    assert covered.all() and starts[0] == 0 and starts[-1] + t == length


def test_ramp_is_positive_and_half_sine():
    w = ramp(32, 8, True, True)
    assert (w > 0).all() and w[8:24].eq(1).all()
    # Two opposite ramps over the same overlap sum to one (sin^2 + cos^2).
    torch.testing.assert_close(w[:8] + w[:8].flip(0), torch.ones(8))


@pytest.mark.parametrize("hw,tile,overlap", [((100, 140), 48, 12), ((64, 64), 32, 16), ((33, 200), 64, 20)])
def test_blend_weights_sum_to_one_and_identity_is_exact(hw, tile, overlap):
    grid = TileGrid.build(*hw, tile, overlap)
    torch.testing.assert_close(grid.normalised_weight_sum(), torch.ones(hw))
    x = torch.rand(2, 3, *hw)
    out = grid.apply(lambda crops: crops[0], [x], tiles_per_batch=3)
    torch.testing.assert_close(out, x)


def test_padding_makes_every_side_tileable():
    assert pad_amounts(30, 100, 64, 16) == (2, 0)
    assert pad_amounts(300, 2, 64, 4) == (0, 6) and pad_amounts(5, 9, 64, 4) == (3, 3)  # at least 2 multiples
    x = torch.rand(1, 3, 3, 5)
    assert pad_image(x, 13, 11).shape[-2:] == (16, 16)  # too small to reflect: replicate


def _restore(model, img, tile, overlap, **kw):
    r = Restorer(model, "cpu", tile=tile, overlap=overlap)
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    return r, x, r.restore(x, **kw)


def test_tiled_and_untiled_predictor_agree():
    # The tiny model's receptive field is ~20 px; with a 32 px overlap the blended tile
    # outputs match the whole-image pass up to where zero-padding at tile edges still
    # leaks in through the small ramp weights: observed max 3e-3 on a [0, 1] scale,
    # so 5e-3 (about one 8-bit grey level) is the tolerance.
    model = random_tiny_model()
    img = smooth_image(150, 190)
    _, _, whole = _restore(model, img, 256, 32, options=SamplingOptions(steps=0))
    _, _, tiled = _restore(model, img, 64, 32, options=SamplingOptions(steps=0))
    assert whole.shape == tiled.shape == (1, 3, 150, 190)
    assert (whole - tiled).abs().max() < 5e-3


@pytest.mark.parametrize("arch", ["dvsr", "msgd"])
def test_tiled_sampling_has_no_seams(arch):
    # Step-synchronous tiling: the error of a tiled stochastic run against the untiled
    # run with the same noise must not jump along the tile borders. (msgd: each tile's
    # guidance is computed once from its own pixels and blended through the outputs.)
    model = random_tiny_model(arch)
    img = smooth_image(96, 160)
    opts = SamplingOptions(steps=8, noise_ceiling=0.9, samples=1)
    gens = lambda: sample_generators(1, "x", 1, torch.device("cpu"))  # noqa: E731
    _, _, whole = _restore(model, img, 256, 32, options=opts, generators=gens())
    _, _, tiled = _restore(model, img, 64, 24, options=opts, generators=gens())
    err = (whole - tiled).abs()
    assert err.max() < 0.02
    # Compare error on the tile-border columns with the error elsewhere.
    grid = TileGrid.build(96, 160, 64, 24)
    borders = sorted({l for _, l in grid.boxes if l > 0} | {l + 64 for _, l in grid.boxes if l + 64 < 160})
    col_err = err.mean(dim=(0, 1, 2))
    on = col_err[borders].mean()
    off = col_err[[c for c in range(160) if all(abs(c - b) > 4 for b in borders)]].mean()
    assert on < 3 * off + 1e-4


def _widely_mixing(model, monkeypatch):
    """The tiny model's denoiser plus the chain's state 4 px up and 4 px left: every step
    carries what a pixel holds 4 px further, so over 16 steps a tile's state depends on
    pixels far across its borders (the tiny network alone reaches so few pixels that
    per-tile chains would pass for tiling)."""
    own = model.denoise

    def denoise(z, level, y, x_init=None, guidance=None):
        p = F.pad(z, (4, 4, 4, 4))
        return own(z, level, y, x_init, guidance) + 0.6 * (p[..., :-8, 4:-4] + p[..., 4:-4, :-8])

    monkeypatch.setattr(model, "denoise", denoise)


def test_tiles_share_every_step_so_a_widely_mixing_denoiser_shows_no_seams(monkeypatch):
    # DDIM: the start noise is the only randomness, so the naive scheme (each tile runs its
    # own whole chain from its crop of the same start noise, then the tiles are blended)
    # can be built here and shown to differ, while step-synchronous tiling matches the
    # whole image. Measured: mean error 1.6e-4 synchronous, 1.0e-3 naive.
    import deblurkit.restorer as restorer_module

    model = random_tiny_model("dvsr")
    _widely_mixing(model, monkeypatch)
    img = smooth_image(96, 160)
    opts = SamplingOptions(steps=16, noise_ceiling=0.9, samples=1, sampler="ddim")
    gens = lambda: sample_generators(1, "x", 1, torch.device("cpu"))  # noqa: E731
    starts = []
    real_initial_state = restorer_module.initial_state
    monkeypatch.setattr(restorer_module, "initial_state", lambda *a: starts.append(real_initial_state(*a)) or starts[-1].clone())
    _, x, whole = _restore(model, img, 256, 32, options=opts, generators=gens())
    _, _, tiled = _restore(model, img, 64, 32, options=opts, generators=gens())
    assert torch.equal(starts[0], starts[1])

    one_tile = Restorer(model, "cpu", tile=256, overlap=32)

    def own_chain(crops):  # one tile's whole reverse chain, alone
        pixels, z_start = crops
        monkeypatch.setattr(restorer_module, "initial_state", lambda *a: z_start.clone())
        return one_tile.restore(pixels, options=opts, generators=gens())

    naive = TileGrid.build(96, 160, 64, 32).apply(own_chain, [x, starts[0]])
    synchronous_err = (whole - tiled).abs().mean()
    naive_err = (whole - naive).abs().mean()
    assert synchronous_err < 3e-4 and (whole - tiled).abs().max() < 0.02
    assert naive_err > 4 * synchronous_err


def test_even_tiles_waste_nothing():
    from deblurkit.tiling import even_tile

    # 1280 px with 1024-px tiles: two tiles of 656 instead of two of 1024.
    assert even_tile(1280, 1024, 32, 16) == 656
    assert even_tile(500, 1024, 32, 16) == 500
    for length in (700, 1281, 4000):
        t = even_tile(length, 512, 32, 16)
        starts = tile_starts(length, t, 32)
        assert t % 16 == 0 and t <= 512 and starts[-1] + t == length
        assert len(starts) == max(1, -(-(length - 32) // (512 - 32)))


def test_blend_normalisation_keeps_only_the_overlaps_and_gives_the_full_map_bits():
    # The normalisation is stored for the rows and columns that cross an overlap only; the
    # result must be bit for bit the old full-map multiply (elsewhere the map is exactly 1).
    for h, w, tile, overlap in [(100, 130, 48, 8), (64, 64, 64, 8), (70, 300, 64, 16)]:
        grid = TileGrid.build(h, w, tile, overlap)
        total = torch.zeros(h, w)
        for (t, l), wt in zip(grid.boxes, grid.weights):
            total[t : t + grid.tile_h, l : l + grid.tile_w] += wt
        assert torch.equal(grid.inv_total, 1.0 / total)
        assert grid.inv_rows.numel() + grid.inv_cols.numel() < h * w or len(grid) == 1
        x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
        fn = lambda crops: torch.tanh(crops[0] * 3)  # noqa: E731
        got = grid.apply(fn, [x], 2)
        acc = torch.zeros(2, 3, h, w)
        for (t, l), wt in zip(grid.boxes, grid.weights):
            acc[:, :, t : t + grid.tile_h, l : l + grid.tile_w] += fn([x[:, :, t : t + grid.tile_h, l : l + grid.tile_w]]) * wt
        assert torch.equal(got, acc * (1.0 / total))


def test_the_tile_size_decides_the_tiles_the_networks_see(monkeypatch, tmp_path):
    """--tile through the command: small tiles mean more, smaller network calls (a --tile
    that was ignored would run one whole-image pass and pass every agreement test)."""
    from typer.testing import CliRunner

    from deblurkit.cli.app import app
    from deblurkit.models.dvsr import DvSR
    from deblurkit.weights import save_checkpoint

    from conftest import save_photo

    save_checkpoint(random_tiny_model(), tmp_path / "tiny.safetensors")
    save_photo(tmp_path / "a.png", 150, 190)
    real = DvSR.predict
    shapes = []

    def spy(self, y, *a, **k):
        shapes.append((y.shape[0], *y.shape[-2:]))
        return real(self, y, *a, **k)

    monkeypatch.setattr(DvSR, "predict", spy)
    seen = {}
    for tile in (48, 256):
        shapes.clear()
        r = CliRunner().invoke(app, [str(tmp_path / "a.png"), "--preset", "fast", "--weights", str(tmp_path / "tiny.safetensors"),
                                     "--tile", str(tile), "--overlap", "16", "-o", str(tmp_path / f"out{tile}.png"), "--quiet"])
        assert r.exit_code == 0, r.output
        seen[tile] = list(shapes)
    assert max(max(s[1:]) for s in seen[48]) <= 48 + 16  # tiles of at most the asked side (plus padding)
    assert max(max(s[1:]) for s in seen[256]) >= 150  # the whole photo in one tile
    assert sum(s[0] for s in seen[48]) >= 12 > sum(s[0] for s in seen[256]) == 1  # many tiles against one


def test_a_coarse_to_fine_predictor_is_tiled_like_any_other():
    from dataclasses import replace

    from deblurkit.models import build_model, tiny_config

    plain = tiny_config("dvsr")
    torch.manual_seed(3)
    model = build_model(replace(plain, predictor_scales=3, predictor=replace(plain.predictor, in_channels=6)))
    for p in model.predictor.parameters():
        torch.nn.init.normal_(p, std=0.05)
    img = smooth_image(150, 190)  # sides that are no multiple of the model's 16
    _, _, whole = _restore(model, img, 256, 32, options=SamplingOptions(steps=0))
    _, _, tiled = _restore(model, img, 96, 32, options=SamplingOptions(steps=0))
    assert whole.shape == tiled.shape == (1, 3, 150, 190)
    assert (whole - tiled).abs().mean() < 5e-3


def test_padding_reflects_bottom_and_right_and_replicates_when_too_small():
    x = torch.arange(20, dtype=torch.float32).reshape(1, 1, 4, 5)
    assert pad_image(x, 0, 0) is x
    got = pad_image(x, 2, 3)
    want = np.pad(x[0, 0].numpy(), ((0, 2), (0, 3)), mode="reflect")
    np.testing.assert_array_equal(got[0, 0].numpy(), want)
    np.testing.assert_array_equal(pad_image(x, 0, 3)[0, 0].numpy(), np.pad(x[0, 0].numpy(), ((0, 0), (0, 3)), mode="reflect"))
    np.testing.assert_array_equal(pad_image(x, 2, 0)[0, 0].numpy(), np.pad(x[0, 0].numpy(), ((0, 2), (0, 0)), mode="reflect"))
    # A pad as long as the side cannot reflect: edge pixels are repeated (both sides).
    for ph, pw in ((4, 1), (1, 5)):
        np.testing.assert_array_equal(pad_image(x, ph, pw)[0, 0].numpy(), np.pad(x[0, 0].numpy(), ((0, ph), (0, pw)), mode="edge"))
    # A side already as long as the tile needs no padding even when it is no multiple.
    assert pad_amounts(10, 11, 10, 4) == (0, 0) and pad_amounts(9, 10, 10, 4) == (3, 0)


def test_only_rows_and_columns_that_cross_an_overlap_keep_a_normalisation():
    grid = TileGrid.build(100, 60, 64, 16)  # two even tiles of 58 rows (at 0 and 42), one column
    assert grid.boxes == [(0, 0), (42, 0)] and (grid.tile_h, grid.tile_w) == (58, 60)
    assert grid.rows.tolist() == list(range(42, 58))
    assert grid.rest.tolist() == list(range(42)) + list(range(58, 100))
    assert grid.cols.tolist() == [] and grid.inv_rows.shape == (16, 60)
    grid = TileGrid.build(50, 100, 64, 16)
    assert grid.rows.tolist() == [] and grid.cols.tolist() == list(range(42, 58))
    assert grid.inv_cols.shape == (50, 16)


def test_the_weight_sum_check_sees_a_broken_grid():
    grid = TileGrid.build(100, 130, 48, 8)
    grid.weights[1] = grid.weights[1] * 0.5  # one tile's weight changed after normalising
    s = grid.normalised_weight_sum()
    t, l = grid.boxes[1]
    assert s[t + grid.tile_h // 2, l + grid.tile_w // 2] == pytest.approx(0.5)
    assert s[0, 0] == 1.0 and s.shape == (100, 130)
