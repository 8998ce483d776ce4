"""Weights registry, checkpoint format, resolution order and the Hub path (real HTTP)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from deblurkit.errors import WeightsError
from deblurkit.weights import load_checkpoint, parse_registry, read_metadata, resolve_weights, save_checkpoint, sha256_of
from deblurkit.weights import registry as registry_mod

from conftest import random_tiny_model
from hub_server import HubServer

REPO, FILE = "deblur-test/tiny", "tiny.safetensors"


def test_checkpoint_describes_itself(tmp_path):
    model = random_tiny_model()
    path = tmp_path / "m.safetensors"
    save_checkpoint(model, path, info={"note": "x"})
    meta = read_metadata(path)
    assert json.loads(meta["deblur.config"])["arch"] == "dvsr"
    assert json.loads(meta["deblur.schedule"])["steps"] == 2000
    ck = load_checkpoint(path)
    assert ck.info == {"note": "x"}
    y = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ck.model.predict(y), model.predict(y))


def test_fp16_checkpoint_loads_as_fp32(tmp_path):
    path = tmp_path / "h.safetensors"
    save_checkpoint(random_tiny_model(), path, dtype=torch.float16)
    assert next(load_checkpoint(path).model.parameters()).dtype == torch.float32


def test_corrupt_and_mismatched_checkpoints_fail_clearly(tmp_path):
    good = tmp_path / "good.safetensors"
    save_checkpoint(random_tiny_model(), good)
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good.read_bytes()[:-500])
    with pytest.raises(WeightsError, match="trunc.safetensors"):
        load_checkpoint(trunc)
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "junk.safetensors")
    # Metadata claiming another architecture than the tensors hold.
    from safetensors.torch import load_file, save_file

    from deblurkit.models import ModelConfig

    meta = read_metadata(good)
    meta["deblur.config"] = ModelConfig().to_json()
    wrong = tmp_path / "wrong.safetensors"
    save_file(load_file(good), wrong, metadata=meta)
    with pytest.raises(WeightsError, match="do not match the architecture"):
        load_checkpoint(wrong)


@pytest.mark.parametrize("poison,needle", [
    (lambda t: t.to(torch.int32), "dtype int32, not floating point"),
    (lambda t: t.bool(), "dtype bool, not floating point"),
    (lambda t: t.fill_(float("nan")), "NaN or infinite"),
    (lambda t: t.fill_(float("inf")), "NaN or infinite"),
])
def test_non_float_or_non_finite_tensors_are_refused_at_load(tmp_path, poison, needle):
    from safetensors.torch import load_file, save_file

    good = tmp_path / "good.safetensors"
    save_checkpoint(random_tiny_model(), good)
    tensors = load_file(good)
    name = sorted(tensors)[0]
    tensors[name] = poison(tensors[name].clone())
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, bad, metadata=read_metadata(good))
    with pytest.raises(WeightsError, match=needle):
        load_checkpoint(bad)


def _registry_text(sha: str, file: str | None = None, hub: bool = False, default: str | None = "tiny") -> str:
    where = f'file = "{file}"' if file else f'hub = {{ repo_id = "{REPO}", filename = "{FILE}", revision = "main" }}'
    head = f'default = "{default}"\n' if default else ""
    return head + f'[models.tiny]\ndescription = "t"\narch = "dvsr"\n{where}\nsha256 = "{sha}"\n'


def test_registry_validation():
    with pytest.raises(WeightsError, match="not listed"):
        parse_registry('default = "x"\n[models]\n')
    z = "0" * 64
    with pytest.raises(WeightsError, match="exactly one"):
        parse_registry(f'[models.a]\narch = "dvsr"\nsha256 = "{z}"\n')
    with pytest.raises(WeightsError, match="unknown model 'b'"):
        parse_registry(_registry_text(z, file="f.safetensors")).get("b")


@pytest.mark.parametrize("text,needle", [
    ('[models.a]\narch = "dvsr"\nfile = "a.safetensors"\nsha256 = 12345\n', "'sha256' must be a string"),
    ('[models.a]\narch = "dvsr"\nfile = "a.safetensors"\nsha256 = "abc"\n', "64 hexadecimal digits"),
    ("models = 5\n", "`models` must be a table"),
    ('[models]\na = "dvsr"\n', "must be a table"),
    ('default = 3\n[models]\n', "`default` must be a model name"),
    ('[models.a]\narch = "dvsr"\nfile = "../../etc/passwd"\nsha256 = "Z"\n'.replace('"Z"', '"' + "0" * 64 + '"'), "plain file name"),
    ('[models.a]\narch = "dvsr"\nfile = "/abs/a.safetensors"\nsha256 = "Z"\n'.replace('"Z"', '"' + "0" * 64 + '"'), "plain file name"),
    ('[models.a]\narch = "dvsr"\nsha256 = "Z"\nhub = { repo_id = "../../etc", filename = "a.safetensors" }\n'
     .replace('"Z"', '"' + "0" * 64 + '"'), "repo_id"),
    ('[models.a]\narch = "dvsr"\nsha256 = "Z"\nhub = { repo_id = "o/r", filename = "../a b.safetensors" }\n'
     .replace('"Z"', '"' + "0" * 64 + '"'), "Hub filename"),
    ('[models.a]\narch = "dvsr"\nsha256 = "Z"\nhub = "o/r/a.safetensors"\n'.replace('"Z"', '"' + "0" * 64 + '"'), "hub must be a table"),
    ('[models.a]\narch = "dvsr"\nfile = "a.safetensors"\nsha256 = "Z"\ntrained_on = "x"\n'.replace('"Z"', '"' + "0" * 64 + '"'),
     "trained_on must be a list"),
])
def test_registry_values_of_the_wrong_type_are_one_line_errors(text, needle):
    with pytest.raises(WeightsError, match=needle) as e:
        parse_registry(text)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("uri", ["hf://../../etc/passwd", "hf://own er/repo/f.safetensors", "hf://o/r/../x.safetensors",
                                 "hf://o/r/a b.safetensors"])
def test_bad_hub_uris_fail_before_any_network_call(uri):
    with pytest.raises(WeightsError):
        resolve_weights(None, uri)


def test_hf_uri_splits_into_repo_file_and_revision():
    from deblurkit.weights.resolve import parse_hf_uri

    def parts(uri):
        loc = parse_hf_uri(uri)
        return loc.repo_id, loc.filename, loc.revision

    assert parts("hf://owner/repo/model.safetensors") == ("owner/repo", "model.safetensors", "main")
    assert parts("hf://owner/repo/sub/dir/m.safetensors@v1.2") == ("owner/repo", "sub/dir/m.safetensors", "v1.2")
    assert parts("hf://o/r/m@a@b") == ("o/r", "m@a", "b")  # the last '@' starts the revision
    for bad in ("hf://owner/repo", "hf://owner/repo@v1", "hf://owner//m.safetensors", "hf:///repo/m.safetensors",
                "hf://o/r/m.safetensors/"):
        with pytest.raises(WeightsError) as e:
            parse_hf_uri(bad)
        assert str(e.value) == f"{bad}: expected hf://OWNER/REPO/FILE[@REVISION]"
    with pytest.raises(WeightsError, match="revision ''"):
        parse_hf_uri("hf://o/r/m.safetensors@")


def test_hub_entries_are_fetched_with_their_checksum_and_name(monkeypatch):
    from pathlib import Path

    from deblurkit.weights import resolve as resolve_mod

    entry = parse_registry(_registry_text("a" * 64, hub=True)).get("tiny")
    calls = []

    def fetch(hub, sha, label):
        calls.append((hub, sha, label))
        return resolve_mod.ResolvedWeights(Path("cached.safetensors"), "cache")

    monkeypatch.setattr(resolve_mod, "fetch_from_hub", fetch)
    res = resolve_mod.resolve_entry(entry)
    assert calls == [(entry.hub, "a" * 64, "tiny")]
    assert res.entry is entry and res.source == "cache" and res.path == Path("cached.safetensors")


def test_bundled_file_missing_or_altered_names_the_model(tmp_path, monkeypatch):
    from deblurkit.weights.resolve import resolve_entry

    monkeypatch.setattr(registry_mod, "BUNDLED_DIR", tmp_path)
    entry = parse_registry(_registry_text("0" * 64, file="tiny.safetensors")).get("tiny")
    with pytest.raises(WeightsError) as e:
        resolve_entry(entry)
    assert str(e.value) == ("model 'tiny': its bundled file tiny.safetensors is missing from this installation "
                            "(reinstall deblur, or pass --weights PATH)")
    (tmp_path / "tiny.safetensors").write_bytes(b"not the model")
    got = sha256_of(tmp_path / "tiny.safetensors")
    with pytest.raises(WeightsError) as e:
        resolve_entry(entry)
    assert str(e.value) == (f"{tmp_path / 'tiny.safetensors'}: checksum mismatch for model 'tiny' "
                            f"(expected sha256 000000000000…, got {got[:12]}…)")


def test_no_default_model_says_so():
    with pytest.raises(WeightsError, match="no default model is bundled"):
        resolve_weights(registry=parse_registry("[models]\n"))


def test_explicit_path_wins_and_bundled_is_checked(tmp_path, monkeypatch):
    ckpt = tmp_path / "tiny.safetensors"
    save_checkpoint(random_tiny_model(), ckpt)
    sha = sha256_of(ckpt)
    monkeypatch.setattr(registry_mod, "BUNDLED_DIR", tmp_path)
    reg = parse_registry(_registry_text(sha, file="tiny.safetensors"))
    other = tmp_path / "other.safetensors"
    save_checkpoint(random_tiny_model(seed=1), other)
    assert resolve_weights("tiny", str(other), registry=reg).source == "path"
    res = resolve_weights(None, None, registry=reg)
    assert res.source == "bundled" and res.path == ckpt
    bad = parse_registry(_registry_text("0" * 64, file="tiny.safetensors"))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        resolve_weights(registry=bad)
    with pytest.raises(WeightsError, match="weights file not found"):
        resolve_weights(weights=str(tmp_path / "nope.safetensors"))


def _cli(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "deblurkit", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def hub_env(tmp_path):
    ckpt = tmp_path / "served.safetensors"
    save_checkpoint(random_tiny_model(), ckpt)
    body = ckpt.read_bytes()
    reg = tmp_path / "weights.toml"
    reg.write_text(_registry_text(sha256_of(ckpt), hub=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf"), DEBLUR_WEIGHTS_TOML=str(reg), HF_HUB_DISABLE_TELEMETRY="1")
    return tmp_path, body, reg, env


def test_hub_download_cache_hit_and_offline(hub_env):
    tmp_path, body, reg, env = hub_env
    with HubServer({(REPO, FILE): body}) as hub:
        env["HF_ENDPOINT"] = hub.url
        r = _cli(["weights", "download", "tiny"], env, tmp_path)
        assert r.returncode == 0, r.stderr
        assert "download" in r.stdout and hub.gets() == 1
        r = _cli(["weights", "list", "--json"], env, tmp_path)
        row = json.loads(r.stdout)[0]
        assert row["status"] == "ok" and row["source"] == "hub"
        # A second resolution is a cache hit: no new download.
        r = _cli(["weights", "download", "tiny"], env, tmp_path)
        assert r.returncode == 0 and "cache" in r.stdout and hub.gets() == 1
    # Server gone, offline mode: the verified cache still serves.
    env["HF_HUB_OFFLINE"] = "1"
    r = _cli(["weights", "download", "tiny"], env, tmp_path)
    assert r.returncode == 0 and "cache" in r.stdout


def test_hub_offline_with_empty_cache_says_what_to_do(hub_env):
    tmp_path, body, reg, env = hub_env
    env.update(HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
    r = _cli(["weights", "download", "tiny"], env, tmp_path)
    assert r.returncode == 3
    msg = r.stderr.strip()
    assert len(msg.splitlines()) == 1 and "HF_HUB_OFFLINE" in msg and "deblur weights download tiny" in msg


def test_hub_unreachable_fails_fast_with_one_line(hub_env):
    import socket
    import time

    tmp_path, body, reg, env = hub_env
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    r = _cli(["weights", "download", "tiny"], env, tmp_path)
    assert r.returncode == 3 and time.perf_counter() - t0 < 20  # not half a minute of retries
    msg = r.stderr.strip()
    assert len(msg.splitlines()) == 1 and "cannot reach the Hugging Face Hub" in msg, msg


def test_hub_checksum_mismatch_deletes_the_download(hub_env):
    tmp_path, body, reg, env = hub_env
    tampered = body[:-4] + b"\x00\x00\x00\x01"
    with HubServer({(REPO, FILE): tampered}) as hub:
        env["HF_ENDPOINT"] = hub.url
        r = _cli(["weights", "download", "tiny"], env, tmp_path)
        assert r.returncode == 3 and "checksum mismatch" in r.stderr
        blobs = list((tmp_path / "hf").rglob("blobs/*"))
        assert not [b for b in blobs if b.is_file() and b.read_bytes() == tampered]
        # The next run does not trust anything left behind: it downloads again.
        r = _cli(["weights", "download", "tiny"], env, tmp_path)
        assert r.returncode == 3 and hub.gets() == 2


def test_a_corrupt_file_already_in_the_cache_is_deleted_and_fetched_again(hub_env):
    # The cache is not trusted: a blob damaged after its download (disk, a killed copy, a
    # hand edit) is caught by the checksum, deleted, and replaced by a fresh download, and
    # a photo then deblurs with the verified file; offline, the damaged file is not used.
    tmp_path, body, reg, env = hub_env
    from PIL import Image

    with HubServer({(REPO, FILE): body}) as hub:
        env["HF_ENDPOINT"] = hub.url
        assert _cli(["weights", "download", "tiny"], env, tmp_path).returncode == 0 and hub.gets() == 1
        blobs = [b for b in (tmp_path / "hf").rglob("blobs/*") if b.is_file()]
        assert len(blobs) == 1 and blobs[0].read_bytes() == body
        blobs[0].write_bytes(body[:-4] + b"\x00\x00\x00\x01")  # damaged in place
        r = _cli(["weights", "list", "--json"], env, tmp_path)
        assert json.loads(r.stdout)[0]["status"] == "checksum mismatch"
        Image.new("RGB", (24, 20), (90, 120, 60)).save(tmp_path / "p.png")
        r = _cli(["p.png", "--model", "tiny", "--preset", "fast"], env, tmp_path)
        assert r.returncode == 0, r.stderr
        assert hub.gets() == 2 and (tmp_path / "p_deblurred.png").is_file()
        cached = [b for b in (tmp_path / "hf").rglob("blobs/*") if b.is_file()]
        assert [b.read_bytes() == body for b in cached] == [True]
        cached[0].write_bytes(b"garbage")
    env["HF_HUB_OFFLINE"] = "1"
    r = _cli(["weights", "download", "tiny"], env, tmp_path)
    assert r.returncode == 3 and "HF_HUB_OFFLINE" in r.stderr
    assert not [b for b in (tmp_path / "hf").rglob("blobs/*") if b.is_file() and b.read_bytes() == b"garbage"]


def test_hf_uri_for_run(hub_env):
    tmp_path, body, reg, env = hub_env
    from PIL import Image

    Image.new("RGB", (24, 20), (90, 120, 60)).save(tmp_path / "p.png")
    with HubServer({(REPO, FILE): body}) as hub:
        env["HF_ENDPOINT"] = hub.url
        r = _cli(["p.png", "--weights", f"hf://{REPO}/{FILE}", "--steps", "2", "--quiet", "--seed", "1"], env, tmp_path)
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "p_deblurred.png").is_file()


def _mutations():
    from hypothesis import strategies as st

    fields = st.sampled_from([("arch",), ("objective",), ("residual_std",), ("condition_on_prediction",), ("predictor",),
                              ("denoiser",)] + [(net, f) for net in ("predictor", "denoiser") for f in (
                                  "base_channels", "channel_mults", "num_res_blocks", "dropout", "in_channels",
                                  "out_channels", "embed_scale", "pixel_shuffle", "bogus")])
    values = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                       st.booleans(), st.none(), st.lists(st.integers(-5, 3000), max_size=4), st.builds(dict), st.builds(list))
    # Fresh empty containers (st.builds), not one shared object: a later mutation into an
    # earlier one's {} must not make the config refer to itself.
    return st.lists(st.tuples(fields, values), min_size=1, max_size=3)


def test_fuzzed_checkpoint_configs_fail_with_one_line_and_bounded_memory(tmp_path_factory):
    """Random metadata (types, sizes, ranges) in a real checkpoint: `deblur run` exits 3
    with one line, or runs if the config is still the one the tensors hold; the peak
    memory of the process never grows by more than a few hundred MB."""
    import resource

    from hypothesis import HealthCheck, given, settings
    from typer.testing import CliRunner

    from deblurkit.cli.app import app
    from PIL import Image
    from safetensors.torch import load_file, save_file

    base = tmp_path_factory.mktemp("fuzz")
    good = base / "good.safetensors"
    save_checkpoint(random_tiny_model(), good)
    tensors, meta = load_file(good), read_metadata(good)
    Image.new("RGB", (32, 32), (120, 60, 30)).save(base / "a.png")
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_mutations())
    def check(mutations):
        config = json.loads(meta["deblur.config"])
        for path, value in mutations:
            target = config
            for key in path[:-1]:
                target = target.get(key) if isinstance(target, dict) else None
            if isinstance(target, dict):
                target[path[-1]] = value
        bad = base / "bad.safetensors"
        save_file(tensors, bad, metadata={**meta, "deblur.config": json.dumps(config)})
        r = CliRunner().invoke(app, [str(base / "a.png"), "--weights", str(bad), "--preset", "fast", "-o",
                                     str(base / "out.png"), "--overwrite", "--quiet"])
        if r.exit_code != 0:
            assert r.exit_code == 3, r.output
            assert len(r.output.strip().splitlines()) == 1 and "bad.safetensors" in r.output, r.output

    check()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024
    assert grown_mb < 500, grown_mb


@pytest.mark.parametrize("patch,needle", [
    ({"base_channels": 3000}, "base_channels must be an integer"),
    ({"num_res_blocks": 10**7}, "num_res_blocks must be an integer"),
    ({"base_channels": 1000, "channel_mults": [1, 2, 4, 8, 16, 32], "num_res_blocks": 32}, r"M parameters \(limit"),
    ({"channel_mults": []}, "channel_mults must be"),
    ({"dropout": 5}, "dropout must be"),
    ({"base_channels": "wide"}, "base_channels must be"),
    ({"base_channels": 16}, "do not match the architecture"),
])
def test_hostile_configs_are_refused_before_any_model_is_built(tmp_path, patch, needle):
    import resource

    from safetensors.torch import load_file, save_file

    good = tmp_path / "good.safetensors"
    save_checkpoint(random_tiny_model(), good)
    meta = read_metadata(good)
    config = json.loads(meta["deblur.config"])
    config["predictor"].update(patch)
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(good), bad, metadata={**meta, "deblur.config": json.dumps(config)})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(WeightsError, match=needle):
        load_checkpoint(bad)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 200  # MB: nothing big was built
