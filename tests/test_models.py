from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from deblurkit.models import ModelConfig, UNetConfig, build_model, icdpm_config, tiny_config
from deblurkit.models.unet import UNet, sinusoidal_embedding
from deblurkit.train import model_size

from conftest import random_tiny_model


@pytest.mark.parametrize("arch", ["dvsr", "icdpm"])
@pytest.mark.parametrize("hw", [(16, 16), (32, 48), (64, 16)])
def test_shapes_at_valid_sizes(arch, hw):
    model = random_tiny_model(arch)
    y = torch.rand(2, 3, *hw) * 2 - 1
    with torch.no_grad():
        assert model.predict(y).shape == y.shape
        assert model.denoise(y, torch.tensor([0.3, 0.9]), y).shape == y.shape


def test_unet_rejects_sizes_that_are_not_a_multiple():
    net = UNet(UNetConfig(channel_mults=(1, 2, 2)))
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 3, 30, 32))


def test_small_config_multiple_and_pixel_shuffle_shapes():
    cfg = model_size("dvsr", "small")
    assert cfg.multiple == 16
    model = build_model(cfg)
    y = torch.rand(1, 3, 48, 80)
    with torch.no_grad():
        assert model.predict(y).shape == y.shape
        assert model.denoise(y, torch.tensor([0.5]), y).shape == y.shape


def test_fresh_predictor_is_identity_and_icdpm_predicts_zero():
    y = torch.rand(1, 3, 32, 32)
    fresh = build_model(tiny_config("dvsr"))
    assert torch.equal(fresh.predict(y), y)  # zero-initialised tail: g(y) = y + 0
    icdpm = build_model(tiny_config("icdpm"))
    assert torch.equal(icdpm.predict(y), torch.zeros_like(y))


def test_noise_level_conditioning_changes_the_output():
    model = random_tiny_model()
    z = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a = model.denoise(z, torch.tensor([0.2]), z)
        b = model.denoise(z, torch.tensor([0.21]), z)
    assert (a - b).abs().max() > 1e-4


def test_embedding_resolves_levels_near_one():
    # The embedding scale must separate the small-noise levels that most steps use.
    e1 = sinusoidal_embedding(torch.tensor([0.9999]), 32, 5000.0)
    e2 = sinusoidal_embedding(torch.tensor([0.9990]), 32, 5000.0)
    assert (e1 - e2).abs().max() > 0.5


def test_config_json_round_trip_and_validation():
    for cfg in (ModelConfig(), icdpm_config(), model_size("dvsr", "small")):
        assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError):
        ModelConfig(arch="icdpm")  # has a predictor by default
    with pytest.raises(ValueError):
        ModelConfig(arch="nope")


def test_fresh_denoiser_is_the_gaussian_optimal_noise_estimate():
    # Zero-initialised backbone: only the preconditioning skip remains, which is the
    # exact E[eps | z] for a N(0, s^2) residual.
    model = build_model(tiny_config())
    s = model.config.residual_std
    z, y = torch.randn(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    lv = torch.tensor([0.3, 0.95])
    with torch.no_grad():
        out = model.denoise(z, lv, y)
    l4 = lv.view(-1, 1, 1, 1)
    torch.testing.assert_close(out, torch.sqrt(1 - l4**2) * z / (l4**2 * s * s + 1 - l4**2))
    plain = build_model(ModelConfig(arch="dvsr", predictor=tiny_config().predictor, denoiser=tiny_config().denoiser, residual_std=0.0))
    with torch.no_grad():
        assert torch.equal(plain.denoise(z, lv, y), torch.zeros_like(z))


def _fourier_pair():
    """A random plain U-Net and the same network with Fourier branches on levels 0 and 1."""
    torch.manual_seed(0)
    plain_cfg = UNetConfig(base_channels=8, channel_mults=(1, 2))
    plain = UNet(plain_cfg)
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.1)  # the zero-initialised tail would hide everything
    fourier = UNet(replace(plain_cfg, fourier_levels=(0, 1)))
    missing, unexpected = fourier.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".fourier." in k for k in missing)
    return plain, fourier


def test_fresh_fourier_branches_change_nothing():
    # Added to a trained network (--init), the zero-initialised branches leave it as it was.
    plain, fourier = _fourier_pair()
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(fourier(x), plain(x))


def test_fourier_branch_sees_the_whole_image_and_plain_convolutions_do_not():
    plain, fourier = _fourier_pair()
    for p in fourier.parameters():
        if p.abs().max() == 0:
            torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(1, 3, 128, 128)
    x2 = x.clone()
    x2[..., :4, :4] += 1.0  # a change in one corner ...
    with torch.no_grad():
        far = lambda net: (net(x2) - net(x))[..., 96:, 96:].abs().max()  # ... seen in the other
        assert far(plain) == 0  # 2 levels of 3x3 convolutions reach ~20 px
        assert far(fourier) > 1e-4


def test_fourier_branch_under_bf16_autocast_and_channels_last():
    _, fourier = _fourier_pair()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = fourier(x)
        net = fourier.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x.contiguous(memory_format=torch.channels_last))
    assert out.shape == ref.shape
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.05)


def test_fourier_levels_round_trip_and_validation():
    cfg = replace(model_size("dvsr", "medium"), predictor=replace(model_size("dvsr", "medium").predictor, fourier_levels=(1, 2, 3)))
    back = ModelConfig.from_json(cfg.to_json())
    assert back == cfg and back.predictor.fourier_levels == (1, 2, 3)
    for bad in ((4,), (1, 1), (-1,), (True,), [1]):
        with pytest.raises(ValueError, match="fourier_levels"):
            UNetConfig(channel_mults=(1, 2, 4, 8), fourier_levels=bad)


def _coarse_to_fine(n=3):
    plain = tiny_config("dvsr")
    return replace(plain, predictor_scales=n, predictor=replace(plain.predictor, in_channels=6))


def test_coarse_to_fine_runs_the_predictor_from_the_coarsest_scale_up():
    model = build_model(_coarse_to_fine(3))
    assert model.config.multiple == 4 * model.config.predictor.multiple
    seen = []
    model.predictor.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape)))
    y = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        assert model.predict(y).shape == y.shape
    assert seen == [(2, 6, 8, 12), (2, 6, 16, 24), (2, 6, 32, 48)]


def test_coarse_to_fine_from_a_plain_checkpoint_starts_as_it_was(tmp_path):
    from deblurkit.train.loop import init_from
    from deblurkit.weights import save_checkpoint

    plain = random_tiny_model("dvsr")
    save_checkpoint(plain, tmp_path / "plain.safetensors")
    model = build_model(_coarse_to_fine(3))
    init_from(model, tmp_path / "plain.safetensors")
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.predict(y), plain.predict(y))  # the new input channels start at zero
        head, k = model.predictor.head.weight, plain.predictor.head.weight.shape[1]
        torch.testing.assert_close(head[:, :k], plain.predictor.head.weight)
        assert head.shape[1] == 2 * k and head[:, k:].abs().max() == 0
        # Once those weights move, the coarser result reaches the output.
        torch.nn.init.normal_(head[:, k:], std=0.1)
        assert (model.predict(y) - plain.predict(y)).abs().max() > 1e-3


def test_predictor_scales_round_trip_and_validation():
    cfg = _coarse_to_fine(2)
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    plain = tiny_config("dvsr")
    with pytest.raises(ValueError, match="in_channels 6"):
        replace(plain, predictor_scales=2)
    with pytest.raises(ValueError, match="predictor_scales"):
        _coarse_to_fine(5)
    with pytest.raises(ValueError, match=r"\[y\] \(in_channels 3\)"):
        replace(plain, predictor=replace(plain.predictor, in_channels=6))


def test_separate_scale_predictors_each_run_their_own_scale():
    model = build_model(replace(_coarse_to_fine(3), separate_scale_predictors=True))
    nets = [model.predictor, *model.predictor_coarse]
    assert len(nets) == 3 and len({id(n) for n in nets}) == 3
    seen = []
    for i, net in enumerate(nets):
        net.register_forward_pre_hook(lambda mod, args, i=i: seen.append((i, tuple(args[0].shape))))
    y = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        assert model.predict(y).shape == y.shape
    # coarsest (its own network, the last) first, the full size by `predictor` last
    assert seen == [(2, (2, 6, 8, 12)), (1, (2, 6, 16, 24)), (0, (2, 6, 32, 48))]
    shared = replace(_coarse_to_fine(3), separate_scale_predictors=True)
    assert ModelConfig.from_json(shared.to_json()) == shared
    with pytest.raises(ValueError, match="separate_scale_predictors"):
        replace(tiny_config("dvsr"), separate_scale_predictors=True)
    with pytest.raises(TypeError, match="separate_scale_predictors"):
        ModelConfig.from_dict({**shared.to_dict(), "separate_scale_predictors": 1})


def test_separate_scales_from_a_shared_checkpoint_start_as_it_was_then_part(tmp_path):
    from deblurkit.train.loop import init_from, set_trainable
    from deblurkit.weights import save_checkpoint

    shared = build_model(_coarse_to_fine(3))
    for p in shared.parameters():  # every weight nonzero, so a tensor not copied shows
        torch.nn.init.normal_(p, std=0.05)
    save_checkpoint(shared, tmp_path / "shared.safetensors")
    model = build_model(replace(_coarse_to_fine(3), separate_scale_predictors=True))
    note = init_from(model, tmp_path / "shared.safetensors")
    own = model.state_dict()
    assert f"{len(own)}/{len(own)} tensors" in note
    src = shared.predictor.state_dict()
    for net in (model.predictor, *model.predictor_coarse):
        for k, v in net.state_dict().items():
            torch.testing.assert_close(v, src[k].to(v.dtype))
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.predict(y), shared.predict(y))
        # The copies are independent: moving one coarse network changes the result, the others stay.
        model.predictor_coarse[0].tail.bias.add_(0.5)
        assert (model.predict(y) - shared.predict(y)).abs().max() > 1e-3
        torch.testing.assert_close(model.predictor.tail.bias, shared.predictor.tail.bias)
        torch.testing.assert_close(model.predictor_coarse[1].tail.bias, shared.predictor.tail.bias)
    # Trained, frozen and clipped as one predictor.
    groups = set_trainable(model, "predictor")
    assert len(groups) == 1 and len(groups[0]) == 3 * len(list(model.predictor.parameters()))
    set_trainable(model, "denoiser")
    assert not any(p.requires_grad for p in model.predictor_coarse.parameters())


def _kernel_aware(n=3):
    c2f = _coarse_to_fine(n) if n > 1 else tiny_config("dvsr")
    return replace(c2f, deconv_input=True, predictor=replace(c2f.predictor, in_channels=c2f.predictor.in_channels + 3))


def test_kernel_aware_predictor_sees_the_deconvolution_at_every_scale():
    model = build_model(_kernel_aware(3))
    seen = []
    model.predictor.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    d = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        model.predict(torch.cat([y, d], 1))
    assert [tuple(s.shape) for s in seen] == [(1, 9, 8, 8), (1, 9, 16, 16), (1, 9, 32, 32)]
    torch.testing.assert_close(seen[-1][:, 6:], d)  # the full-size deconvolution as given
    torch.testing.assert_close(seen[0][:, 6:], F.avg_pool2d(d, 4))
    torch.testing.assert_close(seen[-1][:, :3], y)


def test_kernel_aware_predictor_computes_the_deconvolution_itself():
    from deblurkit.models.dvsr import blind_deconvolve_batch

    ka = build_model(_kernel_aware(1))
    with torch.no_grad():
        for p in ka.parameters():
            torch.nn.init.normal_(p, std=0.05)
    y = torch.rand(1, 3, 48, 48) * 2 - 1
    with torch.no_grad():
        d = blind_deconvolve_batch(y)
        assert d.shape == y.shape and d.dtype == y.dtype and d.min() >= -1 and d.max() <= 1
        torch.testing.assert_close(ka.predict(y), ka.predict(torch.cat([y, d], 1)))
        # ... and the deconvolution matters: another one changes the result.
        assert (ka.predict(torch.cat([y, -d], 1)) - ka.predict(y)).abs().max() > 1e-3


def test_kernel_aware_from_a_coarse_to_fine_checkpoint_starts_as_it_was(tmp_path):
    from deblurkit.train.loop import init_from
    from deblurkit.weights import save_checkpoint

    c2f = build_model(_coarse_to_fine(3))
    for p in c2f.parameters():
        torch.nn.init.normal_(p, std=0.05)
    save_checkpoint(c2f, tmp_path / "c2f.safetensors")
    model = build_model(_kernel_aware(3))
    note = init_from(model, tmp_path / "c2f.safetensors")
    assert f"{len(model.state_dict())}/{len(model.state_dict())} tensors" in note
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    d = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.predict(torch.cat([y, d], 1)), c2f.predict(y))
        head = model.predictor.head.weight
        assert head.shape[1] == 9 and head[:, 6:].abs().max() == 0


def _gated(n=3):
    ka = _kernel_aware(n)
    return replace(ka, deconv_gate=True, predictor=replace(ka.predictor, out_channels=4))


def test_gated_predictor_blends_in_the_deconvolution_by_its_fourth_channel():
    model = build_model(_gated(3))
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    d = torch.rand(1, 3, 32, 32) * 2 - 1
    tail = model.predictor.tail
    s2 = model.config.predictor.pixel_shuffle ** 2
    with torch.no_grad():
        # A fresh tail is zero: no correction and no gate, g(y) = y.
        torch.testing.assert_close(model.predict(torch.cat([y, d], 1)), y)
        # Gate 1 everywhere (the fourth channel's bias), no correction: the deconvolution itself.
        tail.bias[3 * s2:] = 1.0
        torch.testing.assert_close(model.predict(torch.cat([y, d], 1)), d)
        tail.bias[3 * s2:] = 0.25
        torch.testing.assert_close(model.predict(torch.cat([y, d], 1)), y + 0.25 * (d - y))
        # ... plus the correction of the first three channels.
        tail.bias[:3 * s2] = 0.1
        torch.testing.assert_close(model.predict(torch.cat([y, d], 1)), y + 0.1 + 0.25 * (d - y))


def test_gated_from_a_kernel_aware_checkpoint_starts_as_it_was(tmp_path):
    from deblurkit.train.loop import init_from
    from deblurkit.weights import save_checkpoint

    ka = build_model(_kernel_aware(3))
    for p in ka.parameters():
        torch.nn.init.normal_(p, std=0.05)
    save_checkpoint(ka, tmp_path / "ka.safetensors")
    model = build_model(_gated(3))
    note = init_from(model, tmp_path / "ka.safetensors")
    assert f"{len(model.state_dict())}/{len(model.state_dict())} tensors" in note
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    d = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.predict(torch.cat([y, d], 1)), ka.predict(torch.cat([y, d], 1)))
        s2 = model.config.predictor.pixel_shuffle ** 2
        tail = model.predictor.tail
        torch.testing.assert_close(tail.weight[:3 * s2], ka.predictor.tail.weight)
        assert tail.weight.shape[0] == 4 * s2 and tail.weight[3 * s2:].abs().max() == 0 and tail.bias[3 * s2:].abs().max() == 0


def test_gated_config_round_trip_and_validation():
    cfg = _gated(3)
    assert cfg.predictor_outputs == 4 and _kernel_aware(3).predictor_outputs == 3
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="outputs 4 channels .* not 3"):
        replace(cfg, predictor=replace(cfg.predictor, out_channels=3))
    with pytest.raises(ValueError, match="deconv_gate needs deconv_input"):
        replace(cfg, deconv_input=False, predictor=replace(cfg.predictor, in_channels=6))
    with pytest.raises(TypeError, match="deconv_gate"):
        ModelConfig.from_dict({**cfg.to_dict(), "deconv_gate": 1})


def test_kernel_aware_config_round_trip_and_validation():
    cfg = _kernel_aware(3)
    assert cfg.predictor_inputs == 9 and _kernel_aware(1).predictor_inputs == 6
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match=r"\[y, coarser result, deconvolution\] \(in_channels 9\)"):
        replace(cfg, predictor=replace(cfg.predictor, in_channels=6))
    with pytest.raises(ValueError, match=r"\(in_channels 6\), not 9"):
        replace(cfg, deconv_input=False)
    with pytest.raises(TypeError, match="deconv_input"):
        ModelConfig.from_dict({**cfg.to_dict(), "deconv_input": "yes"})


def test_a_kernel_aware_model_deconvolves_with_its_configs_rule(monkeypatch):
    import deblurkit.deconv as dc

    base = _kernel_aware(1)
    with pytest.raises(ValueError, match="fixed or noise"):
        replace(base, deconv_wiener="loud")
    with pytest.raises(ValueError, match="needs deconv_input"):
        replace(tiny_config("dvsr"), deconv_wiener="noise")
    cfg = replace(base, deconv_wiener="noise")
    assert ModelConfig.from_dict(cfg.to_dict()).deconv_wiener == "noise"
    assert ModelConfig.from_dict({k: v for k, v in base.to_dict().items() if k != "deconv_wiener"}).deconv_wiener == "fixed"
    seen = []
    monkeypatch.setattr(dc, "blind_deconvolve", lambda rgb, rule="fixed": seen.append(rule) or rgb)
    for c in (base, cfg):
        with torch.no_grad():
            build_model(c).eval().predict(torch.rand(1, 3, 48, 48) * 2 - 1)
    assert seen == ["fixed", "noise"]


def test_the_refiner_is_the_one_network_conditioned_on_a_kernel():
    assert tiny_config(refined=True).refiner.kernel_grid == 0  # the default refiner is not told the kernel
    cfg = tiny_config(refined="kernel")
    assert cfg.refiner.kernel_grid > 0
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    # A refiner saved before kernels were its condition loads as it was trained: unconditioned.
    old = cfg.to_dict()
    old["refiner"] = {k: v for k, v in old["refiner"].items() if k not in ("kernel_grid", "kernel_cell")}
    assert ModelConfig.from_dict(old).refiner.kernel_grid == 0
    with pytest.raises(ValueError, match="only the refiner is conditioned on a kernel"):
        replace(cfg, predictor=replace(cfg.predictor, kernel_grid=8))
    with pytest.raises(ValueError, match="kernel_grid"):
        replace(cfg.refiner, kernel_grid=-1)
