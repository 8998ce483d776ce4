import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from deblurkit.errors import ImageReadError, ImageWriteError
from deblurkit.io import apply_orientation, discover, encode_image, plan_outputs, read_image, write_atomic
from deblurkit.io.discover import InputItem


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _write_cv2(path, arr):
    ok, buf = cv2.imencode(path.suffix, arr)
    assert ok
    path.write_bytes(buf.tobytes())


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip_stays_16bit(tmp_path, ext):
    rng = np.random.default_rng(0)
    rgb16 = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    src = tmp_path / f"in{ext}"
    _write_cv2(src, cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    img = read_image(src)
    assert img.bit_depth == 16 and not img.grayscale
    np.testing.assert_allclose(img.rgb, rgb16 / 65535.0, atol=1e-6)
    data = encode_image(img.rgb, "PNG" if ext == ".png" else "TIFF", bit_depth=16)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(cv2.cvtColor(back, cv2.COLOR_BGR2RGB), rgb16)


@pytest.mark.parametrize("depth", [8, 16])
def test_alpha_is_passed_through_unchanged(tmp_path, depth):
    rng = np.random.default_rng(1)
    dt = np.uint16 if depth == 16 else np.uint8
    rgba = rng.integers(0, np.iinfo(dt).max + 1, (16, 24, 4), dtype=dt)
    src = tmp_path / "a.png"
    _write_cv2(src, cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    img = read_image(src)
    assert img.alpha is not None and img.alpha.dtype == dt
    np.testing.assert_array_equal(img.alpha, rgba[:, :, 3])
    data = encode_image(img.rgb, "PNG", bit_depth=img.bit_depth, alpha=img.alpha)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back[:, :, 3], rgba[:, :, 3])


def test_grayscale_in_grayscale_out(tmp_path):
    src = tmp_path / "g.png"
    Image.fromarray(np.arange(200, dtype=np.uint8).reshape(10, 20)).save(src)
    img = read_image(src)
    assert img.grayscale and img.rgb.shape == (10, 20, 3)
    out = Image.open(io.BytesIO(encode_image(img.rgb, "PNG", grayscale=True)))
    assert out.mode == "L"
    np.testing.assert_array_equal(np.array(out), np.arange(200, dtype=np.uint8).reshape(10, 20))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    arr = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    src = tmp_path / "o.png"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr).save(src, exif=exif.tobytes())
    img = read_image(src)
    expected = np.array(ImageOps.exif_transpose(Image.open(src)))
    np.testing.assert_array_equal(np.round(img.rgb * 255).astype(np.uint8), expected)
    assert apply_orientation(arr, orientation).shape == expected.shape
    # Written back with the orientation reset to normal.
    out = Image.open(io.BytesIO(encode_image(img.rgb, "PNG", exif=img.exif)))
    assert out.getexif().get(0x0112) == 1


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_icc_profile_is_written_back(tmp_path, fmt):
    icc = _srgb_icc()
    src = tmp_path / "c.png"
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(src, icc_profile=icc)
    img = read_image(src)
    assert img.icc_profile == icc
    out = Image.open(io.BytesIO(encode_image(img.rgb, fmt, icc_profile=img.icc_profile)))
    assert out.info.get("icc_profile") == icc


def test_16bit_png_carries_icc_and_exif(tmp_path):
    icc = _srgb_icc()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0112] = 1
    data = encode_image(np.full((4, 5, 3), 0.5, np.float32), "PNG", bit_depth=16, icc_profile=icc, exif=exif.tobytes())
    out = Image.open(io.BytesIO(data))
    assert out.info.get("icc_profile") == icc
    assert out.getexif().get(0x010F) == "TestCam"
    px = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert px.dtype == np.uint16 and int(px[0, 0, 0]) == 32768


def test_bad_files_raise_the_projects_error(tmp_path):
    (tmp_path / "text.jpg").write_text("hello")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(good)
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:60])
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("text.jpg", "trunc.png", "empty.png", "missing.png"):
        with pytest.raises(ImageReadError) as e:
            read_image(tmp_path / name)
        assert name in str(e.value)


def test_png_named_jpg_just_works(tmp_path):
    p = tmp_path / "actually_png.jpg"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(p, format="PNG")
    assert read_image(p).format == "PNG"


def test_pixel_limit(tmp_path):
    p = tmp_path / "big.png"
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(p)
    with pytest.raises(ImageReadError, match="pixel limit"):
        read_image(p, max_pixels=5000)


def test_the_pixel_limit_is_ours_and_pillows_global_is_never_changed(tmp_path, monkeypatch):
    # Pillow's module-wide bomb limit belongs to the process (a server's other threads, the
    # caller): reading under our own limit neither changes it nor depends on it.
    p = tmp_path / "big.png"
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow alone would refuse 10,000 pixels
    assert read_image(p, max_pixels=20000).size == (100, 100)
    with pytest.raises(ImageReadError, match="pixel limit"):
        read_image(p, max_pixels=5000)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    write_atomic(target, b"first")
    assert target.read_bytes() == b"first"

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(ImageWriteError, match="No space left"):
        write_atomic(target, b"second")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_atomic_write_goes_through_a_private_temporary_beside_the_target(tmp_path, monkeypatch):
    """The temporary lives in the destination folder (a rename across file systems is not
    atomic), carries our PID-stamped name (so a later run can clean it up), is flushed to
    disk before the rename, and the output gets the mode a plain open() would give."""
    from deblurkit.io.write import default_file_mode, temp_prefix

    target = tmp_path / "new" / "deeper" / "out.png"  # missing folders are made
    seen, synced = [], []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(os, "replace", lambda a, b: (seen.append((Path(a), Path(b), Path(a).read_bytes())), real_replace(a, b))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    write_atomic(target, b"payload")
    (tmp, final, content), = seen
    assert final == target and tmp.parent == target.parent and content == b"payload" and synced
    assert tmp.name.startswith(temp_prefix(target)) and tmp.name.endswith(".tmp") and not tmp.exists()
    assert target.read_bytes() == b"payload"
    assert (target.stat().st_mode & 0o777) == default_file_mode()


def test_atomic_write_removes_abandoned_temporaries_of_the_same_output_only(tmp_path):
    target = tmp_path / "out.png"
    dead = tmp_path / ".out.png.deblur-999999999-abc.tmp"  # no such PID
    live = tmp_path / f".out.png.deblur-{os.getpid()}-abc.tmp"
    other = tmp_path / ".other.png.deblur-999999999-abc.tmp"
    for p in (dead, live, other):
        p.write_bytes(b"x")
    write_atomic(target, b"ok")
    assert not dead.exists() and live.exists() and other.exists() and target.read_bytes() == b"ok"


def test_atomic_write_to_an_unwritable_place_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(ImageWriteError) as e:
        write_atomic(blocker / "out.png", b"data")
    assert str(e.value).startswith(f"{blocker / 'out.png'}: cannot write here (") and str(e.value).endswith(")")


def test_discover_skips_own_outputs_and_recurses(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.jpg", "a_deblurred.png", "b_deblurred_s1.png", "b_deblurred_std.png", "notes.txt", "sub/c.PNG"):
        (tmp_path / name).write_bytes(b"x")
    flat = [i.path.name for i in discover([tmp_path])]
    assert flat == ["a.jpg"]
    deep = discover([tmp_path], recursive=True)
    assert [i.path.name for i in deep] == ["a.jpg", "c.PNG"]
    plan = plan_outputs(deep[1], tmp_path / "out", True, "png", 2, True)
    assert [p.relative_to(tmp_path) for p in plan.all] == [
        Path("out/sub/c_deblurred_s0.png"), Path("out/sub/c_deblurred_s1.png"), Path("out/sub/c_deblurred_std.png")]


def test_plan_for_single_output_file(tmp_path):
    item = InputItem(tmp_path / "x.jpg")
    plan = plan_outputs(item, tmp_path / "result.jpg", False, "png", 1, False)
    assert plan.all == [tmp_path / "result.jpg"]


def test_16bit_grey_with_alpha_stays_grey_with_alpha(tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w = 6, 9
    grey = (np.arange(h * w, dtype=np.uint16).reshape(h, w) * 1000 + 7)
    alpha = np.full((h, w), 40000, np.uint16)
    alpha[0, 0] = 0
    la = np.stack([grey, alpha], axis=2).astype(">u2")
    raw = b"".join(b"\x00" + la[y].tobytes() for y in range(h))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    src = tmp_path / "la16.png"
    src.write_bytes(png)
    img = read_image(src)
    assert img.grayscale and img.bit_depth == 16 and img.alpha.dtype == np.uint16
    np.testing.assert_array_equal(img.alpha, alpha)
    data = encode_image(img.rgb, "PNG", bit_depth=16, grayscale=True, alpha=img.alpha)
    assert data[24] == 16 and data[25] == 4  # IHDR: 16 bits, colour type 4 (grey + alpha)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back[:, :, 0], grey)
    np.testing.assert_array_equal(back[:, :, 3], alpha)


def test_preview_outputs_are_not_taken_as_inputs(tmp_path):
    for name in ("a.png", "a_deblurred.png", "a_preview_balanced.png", "a_preview_custom_s1.png", "a_preview_fast_std.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    assert [i.path.name for i in discover([tmp_path])] == ["a.png"]


def test_region_accepts_ascii_digits_only():
    from deblurkit.errors import UsageError
    from deblurkit.io.region import parse_region

    for text in ("0,0,²⁰,20", "0,0,٢٠,20", "0,0,２０,20"):  # superscript, Arabic-Indic, full-width digits
        with pytest.raises(UsageError, match="expected X,Y,W,H"):
            parse_region(text)
    assert parse_region("1,2,30,40").width == 30


def test_output_format_comes_from_the_flag_then_the_suffix_then_png():
    from deblurkit.io.write import format_for

    assert format_for(Path("a.JPG")) == "JPEG" and format_for(Path("a.jpeg")) == "JPEG"
    assert format_for(Path("a.tif")) == "TIFF" and format_for(Path("a.webp")) == "WEBP"
    assert format_for(Path("noext")) == "PNG"
    assert format_for(Path("a.jpg"), "TIFF") == "TIFF"  # an explicit format wins over the suffix
    with pytest.raises(ImageWriteError) as e:
        format_for(Path("out.gif"))
    assert str(e.value) == "out.gif: unsupported output format 'gif' (use one of bmp, jpeg, jpg, png, tif, tiff, webp)"


def test_quantise_rounds_and_clips_in_every_band():
    from deblurkit.io.write import _quantise

    vals = np.array([-0.5, 0.0, 0.49 / 255, 0.51 / 255, 0.5, 1.0, 1.7], np.float32)
    # Rows of 2^21 values: a band is 2 rows, so the 3 rows take two bands.
    x = np.zeros((3, 1 << 21, 1), np.float32)
    x[:, : vals.size, 0] = vals
    x[2, -1, 0] = 1.0
    q8, q16 = _quantise(x, 8), _quantise(x, 16)
    assert q8.dtype == np.uint8 and q16.dtype == np.uint16
    for r in range(3):
        np.testing.assert_array_equal(q8[r, : vals.size, 0], [0, 0, 0, 1, 128, 255, 255])
        np.testing.assert_array_equal(q16[r, : vals.size, 0], np.round(np.clip(vals, 0, 1) * 65535))
    assert q8[2, -1, 0] == 255 and q16[2, -1, 0] == 65535 and q8[1, -1, 0] == 0


def test_alpha_depth_follows_the_colour_depth():
    from deblurkit.io.write import _match_depth

    a8 = np.array([0, 1, 128, 255], np.uint8)
    up = _match_depth(a8, 16)
    assert up.dtype == np.uint16
    np.testing.assert_array_equal(up, [0, 257, 128 * 257, 65535])
    down = _match_depth(np.array([0, 128, 129, 257, 65535], np.uint16), 8)
    assert down.dtype == np.uint8
    np.testing.assert_array_equal(down, [0, 0, 1, 1, 255])
    assert _match_depth(a8, 8) is a8


def test_jpeg_keeps_exif_quality_and_full_chroma():
    from PIL import JpegImagePlugin

    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    rgb = np.random.default_rng(2).random((32, 32, 3)).astype(np.float32)
    hi = encode_image(rgb, "JPEG", exif=exif.tobytes(), quality=95)
    lo = encode_image(rgb, "JPEG", quality=60)
    out = Image.open(io.BytesIO(hi))
    assert out.format == "JPEG" and out.getexif().get(0x010F) == "TestCam"
    assert JpegImagePlugin.get_sampling(out) == 0  # 4:4:4 at high quality
    assert JpegImagePlugin.get_sampling(Image.open(io.BytesIO(lo))) == 2  # 4:2:0 below 90
    assert len(lo) < len(hi)
    # A 16-bit request falls back to 8 bits for formats that have none.
    assert Image.open(io.BytesIO(encode_image(rgb, "JPEG", bit_depth=16))).mode == "RGB"


def test_webp_and_tiff_and_bmp_branches():
    rgb = np.random.default_rng(3).random((16, 16, 3)).astype(np.float32)
    alpha = np.arange(256, dtype=np.uint8).reshape(16, 16)
    webp_hi = encode_image(rgb, "WEBP", quality=95)
    webp_lo = encode_image(rgb, "WEBP", quality=30)
    assert Image.open(io.BytesIO(webp_hi)).format == "WEBP" and len(webp_lo) < len(webp_hi)
    webp_a = Image.open(io.BytesIO(encode_image(rgb, "WEBP", alpha=alpha)))
    assert webp_a.mode == "RGBA"
    # 16-bit TIFF from OpenCV's TIFF encoder (not a PNG under a .tiff name), values kept.
    tif = encode_image(rgb, "TIFF", bit_depth=16)
    assert tif[:4] in (b"II*\x00", b"MM\x00*")
    back = cv2.imdecode(np.frombuffer(tif, np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(cv2.cvtColor(back, cv2.COLOR_BGR2RGB), np.round(rgb * 65535).astype(np.uint16))
    # BMP has no alpha here: dropped, not a 4-channel file.
    bmp = Image.open(io.BytesIO(encode_image(rgb, "BMP", alpha=alpha)))
    assert bmp.format == "BMP" and bmp.mode == "RGB"
    np.testing.assert_array_equal(np.array(bmp), np.round(rgb * 255).astype(np.uint8))
