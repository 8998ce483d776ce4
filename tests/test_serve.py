"""`deblur serve` against the real server: `python -m deblurkit serve` on 127.0.0.1 with a
tiny random checkpoint, driven over HTTP."""

import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_image

pytest.importorskip("fastapi", reason="deblur serve's extra (fastapi, uvicorn, python-multipart) is not installed")
pytest.importorskip("uvicorn", reason="deblur serve's extra is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, weights: Path, tmp: Path, *extra: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, TMPDIR=str(tmp))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deblurkit", "serve", "--weights", str(weights), "--port", str(self.port), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
        self.banner = self.proc.stdout.readline()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read())
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return self.proc.returncode, err


def request(url, method="GET", data=None, headers=None):
    """(status, headers, body bytes) without raising for 4xx/5xx."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        try:
            body = e.read()
        except OSError:  # answered mid-upload, then closed: the status is what counts
            body = b""
        return e.code, dict(e.headers), body


def multipart(fields: dict, files: dict) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    for k, (name, data) in files.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{name}"\r\n'
                  f'Content-Type: application/octet-stream\r\n\r\n'.encode() + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def png_bytes(h=40, w=56, seed=0, depth=8) -> bytes:
    arr = smooth_image(h, w, seed)
    buf = io.BytesIO()
    if depth == 16:
        import cv2

        ok, enc = cv2.imencode(".png", cv2.cvtColor((arr * 65535).astype(np.uint16), cv2.COLOR_RGB2BGR))
        return enc.tobytes()
    Image.fromarray(np.round(arr * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def served_weights(tmp_path_factory):
    from conftest import random_tiny_model
    from deblurkit.weights import save_checkpoint

    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_checkpoint(random_tiny_model(), path)
    return path


@pytest.fixture(scope="module")
def server(served_weights, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    srv = Server(served_weights, tmp, "--max-pixels", "100000", "--max-upload-mb", "1", "--upload-timeout", "1")
    srv.tmp = tmp
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


def submit(server, fields, name="photo.png", data=None, headers=None):
    body, h = multipart(fields, {"image": (name, png_bytes() if data is None else data)})
    status, _, out = request(server.url + "/api/restore", "POST", body, {**h, **(headers or {})})
    return status, json.loads(out or b"{}")


def wait(server, job_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, _, body = request(f"{server.url}/api/jobs/{job_id}")
        job = json.loads(body)
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']}")


def test_job_life_cycle_and_result_is_the_command_lines_bytes(server, served_weights, tmp_path):
    assert "open http://127.0.0.1" in server.banner
    data = png_bytes(depth=16)
    status, job = submit(server, {"preset": "balanced", "seed": "5"}, name="photo.png", data=data)
    assert status == 202 and job["status"] == "queued" and job["seed"] == 5
    done = wait(server, job["id"])
    assert done["status"] == "done" and done["progress"] == 1.0 and done["results"] == ["photo_deblurred.png"]
    assert done["steps"] == 3 and done["step"] == 3
    status, headers, result = request(f"{server.url}/api/jobs/{job['id']}/result")
    assert status == 200 and headers["content-type"] == "image/png" and "photo_deblurred.png" in headers["content-disposition"]
    # The same name, seed and settings on the command line write the same bytes (16-bit kept).
    (tmp_path / "photo.png").write_bytes(data)
    r = subprocess.run([sys.executable, "-m", "deblurkit", "photo.png", "--weights", str(served_weights), "--preset", "balanced",
                        "--seed", "5", "--quiet"], cwd=tmp_path, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "photo_deblurred.png").read_bytes() == result
    status, _, before = request(f"{server.url}/api/jobs/{job['id']}/before")
    assert status == 200 and Image.open(io.BytesIO(before)).size == (56, 40)


def test_preview_region_samples_and_std_map(server):
    status, job = submit(server, {"preset": "balanced", "region": "8,4,32,24", "samples": "3", "std": "true", "seed": "1"})
    assert status == 202
    done = wait(server, job["id"])
    assert done["status"] == "done" and len(done["results"]) == 3 and done["std"]
    for i in range(3):
        status, _, body = request(f"{server.url}/api/jobs/{job['id']}/result?index={i}")
        assert status == 200 and Image.open(io.BytesIO(body)).size == (32, 24)
    assert request(f"{server.url}/api/jobs/{job['id']}/result?index=3")[0] == 404
    status, _, body = request(f"{server.url}/api/jobs/{job['id']}/result?index=abc")
    assert status == 400 and json.loads(body) == {"error": "index: Input should be a valid integer, unable to parse string as an integer"}
    assert request(f"{server.url}/api/jobs/{job['id']}/std")[0] == 200
    status, job = submit(server, {"preset": "fast", "region": "preview"})
    assert wait(server, job["id"])["results"] == ["photo_preview_fast.png"]


@pytest.mark.parametrize("fields,name,data,code,needle", [
    ({"preset": "nope"}, "a.png", None, 400, "expected one of"),
    ({"steps": "-3"}, "a.png", None, 400, "whole number"),
    ({"steps": "abc"}, "a.png", None, 400, "whole number"),
    ({"samples": "0"}, "a.png", None, 400, "samples"),
    ({"noise_ceiling": "2"}, "a.png", None, 400, "noise_ceiling"),
    ({"seed": str(2**64)}, "a.png", None, 400, "seed"),
    ({"region": "1,2,3"}, "a.png", None, 400, "X,Y,W,H"),
    ({"average": "maybe"}, "a.png", None, 400, "true or false"),
    ({"kernel": "maybe"}, "a.png", None, 400, "expected auto or none"),
    ({"path": "/etc/passwd"}, "a.png", None, 400, "unknown field"),
    ({"preset": "fast", "steps": "0", "samples": "4"}, "a.png", None, 400, "samples"),
    ({}, "notes.txt", b"hello, not a photo", 415, "not a photo"),
    ({}, "empty.png", b"", 400, "empty"),
    ({}, "big.png", "big", 413, "over the server's limit"),
    ({}, "broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 202, None),
])
def test_bad_requests_get_a_4xx_with_the_reason(server, fields, name, data, code, needle):
    if data == "big":
        data = png_bytes(400, 400)  # 160,000 pixels against --max-pixels 100000
    status, body = submit(server, fields, name=name, data=data)
    assert status == code, body
    if needle:
        assert needle in body["error"], body
    else:  # a truncated PNG is accepted, then fails as a job with the reader's reason
        job = wait(server, body["id"])
        assert job["status"] == "failed" and "broken.png" in job["error"] and "/" not in job["error"].split(":")[0]


def test_a_thumbnail_for_photos_browsers_cannot_show(server):
    # A 16-bit TIFF (no browser shows TIFF) comes back as an 8-bit PNG, its longest side at
    # most 1024 px, with the photo's own size; nothing is kept on the server.
    folders = lambda: set(server.tmp.glob("deblur-serve-*/jobs/*"))  # noqa: E731 (other tests' jobs share the server)
    before = folders()
    buf = io.BytesIO()
    Image.fromarray(np.round(smooth_image(40, 1300, 3) * 65535).astype(np.uint16)[..., 0]).save(buf, "TIFF")
    body, h = multipart({}, {"image": ("wide.tif", buf.getvalue())})
    status, headers, out = request(server.url + "/api/thumbnail", "POST", body, h)
    assert status == 200 and headers["content-type"] == "image/png", out[:200]
    assert (headers["x-image-width"], headers["x-image-height"]) == ("1300", "40")
    thumb = Image.open(io.BytesIO(out))
    assert thumb.size == (1024, 32) and thumb.mode in ("RGB", "L")
    for fields, name, data, code in (({}, "notes.txt", b"not a photo", 415), ({"preset": "fast"}, "a.png", png_bytes(), 400),
                                     ({}, "big.png", png_bytes(400, 400), 413)):
        body, h = multipart(fields, {"image": (name, data)})
        assert request(server.url + "/api/thumbnail", "POST", body, h)[0] == code, name
    assert folders() <= before  # nothing kept, failures included


def test_thumbnail_uploads_in_flight_are_bounded(server):
    # Each thumbnail upload may hold its body on disk twice: at most 4 at once (429 beyond),
    # and their places come back when they end (here: stalled, answered 408).
    slow, _ = half_uploads(server.port, 4, path="/api/thumbnail", fields={})
    time.sleep(0.3)
    body, h = multipart({}, {"image": ("a.png", png_bytes())})
    status, _, out = request(server.url + "/api/thumbnail", "POST", body, h)
    assert status == 429 and b"thumbnails" in out, out[:200]
    for s in slow:
        assert s.recv(4096).startswith(b"HTTP/1.1 408")
        s.close()
    assert request(server.url + "/api/thumbnail", "POST", body, h)[0] == 200


def test_a_job_tells_its_phase_and_the_kernel_it_found(server):
    import cv2

    # kernel=auto, as `deblur --kernel auto`: the path taken, why, and the kernel as a PNG.
    shaken = cv2.filter2D(np.round(smooth_image(96, 128, 11) * 255).astype(np.uint8), -1, np.full((1, 9), 1 / 9))
    buf = io.BytesIO()
    Image.fromarray(shaken).save(buf, "PNG")
    status, job = submit(server, {"preset": "fast", "kernel": "auto"}, data=buf.getvalue())
    assert status == 202
    phases = []
    deadline = time.time() + 60
    while time.time() < deadline:
        state = json.loads(request(f"{server.url}/api/jobs/{job['id']}")[2])
        phases.append(state["phase"])
        if state["status"] in ("done", "failed", "cancelled"):
            break
    assert state["status"] == "done" and phases[-1] == "done", state
    assert set(phases) <= {"queued", "reading", "first pass", "done"}, phases  # a fast job: no steps
    assert state["settings"]["kernel"] == "auto"
    kernel = state["kernel"]
    assert kernel["path"] in ("kernel", "blind") and kernel["reason"] and kernel["image"], kernel
    status, headers, body = request(f"{server.url}/api/jobs/{job['id']}/kernel")
    assert status == 200 and headers["content-type"] == "image/png"
    k = Image.open(io.BytesIO(body))
    assert k.size[0] == k.size[1] >= 3
    # Without kernel=auto: none asked for, none served.
    status, job = submit(server, {"preset": "fast"})
    done = wait(server, job["id"])
    assert done["kernel"] is None and done["settings"]["kernel"] == "none"
    assert request(f"{server.url}/api/jobs/{job['id']}/kernel")[0] == 404


def test_progress_and_time_left_from_the_first_moment():
    # Job.estimate with made-up times: the first pass counts as one step of the fraction;
    # its time comes from earlier jobs (seconds per pixel), the steps' from the job itself
    # once two have come.
    from deblurkit.presets import resolve_settings
    from deblurkit.serve.jobs import Job

    now = 1000.0
    job = Job("0" * 32, "a.png", Path("."), resolve_settings(preset="balanced"), 0, status="running", steps=3,
              phase="first pass", pixels=100, t_read=now - 1)
    assert job.estimate(now) == (0.0, None)  # nothing to go by yet: the page shows a moving bar
    job.rates = {"pass": 0.02, "step": 0.01}  # 2 s for the pass, 1 s a step, at 100 px
    assert job.estimate(now) == (0.5 / 4, 1.0 + 3 * 1.0)
    job.phase, job.step, job.first_step, job.t_first_step, job.t_step = "refining", 1, 1, now - 0.5, now - 0.5
    assert job.estimate(now) == (2 / 4, 1.0 * 2 - 0.5)  # one step in: the earlier jobs' pace
    job.step, job.t_step = 2, now
    assert job.estimate(now) == (3 / 4, 0.5 * 1)  # two: its own pace
    fast = Job("1" * 32, "a.png", Path("."), resolve_settings(preset="fast"), 0, status="running",
               phase="first pass", pixels=100, t_read=now - 1, rates={"pass": 0.04})
    assert fast.estimate(now) == (0.25, 3.0)
    assert fast.to_dict()["phase"] == "first pass"


def test_upload_limit_is_413_declared_or_not(server):
    big = os.urandom(2 << 20)  # 2 MiB against --max-upload-mb 1
    body, h = multipart({}, {"image": ("x.png", big)})
    # Declared: answered from the headers alone (a client still sending its body may see
    # the connection close under it, so the body is not sent here).
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall((f"POST /api/restore HTTP/1.1\r\nHost: x\r\nContent-Type: {h['Content-Type']}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 413")
    # Chunked (no Content-Length): counted as it arrives.
    def chunks():
        yield body
    req = urllib.request.Request(server.url + "/api/restore", data=chunks(), method="POST", headers=h)
    try:
        status = urllib.request.urlopen(req, timeout=60).status
    except urllib.error.HTTPError as e:
        status = e.code
    except (ConnectionError, urllib.error.URLError):
        status = 413  # the server may close the connection after answering mid-upload
    assert status == 413


def png_header(w: int, h: int) -> bytes:
    """A PNG that is only its header (IHDR, IEND): it claims w x h pixels in ~45 bytes."""
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def jpeg_header(w: int, h: int) -> bytes:
    """A JPEG that is only its markers (SOF0 saying w x h, SOS, EOI)."""
    sof = struct.pack(">BHHB", 8, h, w, 3) + b"".join(struct.pack(">BBB", i + 1, 0x11, 0) for i in range(3))
    sos = b"\x03" + b"".join(struct.pack(">BB", i + 1, 0) for i in range(3)) + b"\x00\x3f\x00"
    return (b"\xff\xd8\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xda" + struct.pack(">H", len(sos) + 2) + sos
            + b"\xff\xd9")


def test_the_pixel_limit_holds_from_the_header_and_after_jobs_have_run(server):
    # A job has read a photo first: the reader must not have changed Pillow's global bomb
    # limit, which once made every upload over twice the limit slip through (202).
    status, job = submit(server, {"preset": "fast"})
    assert status == 202 and wait(server, job["id"])["status"] == "done"
    for name, data in (("real.png", png_bytes(500, 500)),  # 2.5x --max-pixels 100000
                       ("claims.png", png_header(65535, 65535)), ("claims.jpg", jpeg_header(60000, 60000))):
        status, body = submit(server, {"preset": "fast"}, name=name, data=data)
        assert status == 413 and name in body["error"] and "over the server's limit" in body["error"], (name, status, body)


def test_other_client_inputs_are_never_a_500(server):
    u = server.url
    assert request(u + "/api/jobs/" + "0" * 32)[0] == 404
    assert request(u + "/api/jobs/../../etc/passwd")[0] == 404
    assert request(u + "/api/jobs/nothex")[0] == 404
    assert request(u + "/static/../../pyproject.toml")[0] == 404
    assert request(u + "/static/app.js")[0] == 200
    assert request(u + "/api/restore", "POST", b"x=1", {"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
    assert request(u + "/api/restore", "POST", b"--b\r\ngarbage", {"Content-Type": "multipart/form-data; boundary=b"})[0] == 400
    body, h = multipart({}, {})
    assert request(u + "/api/restore", "POST", body, h)[0] == 400
    # A huge multipart part header.
    hdr = "X-" + "a" * 200_000
    raw = (f'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n{hdr}: 1\r\n\r\n').encode() + png_bytes() + b"\r\n--b--\r\n"
    status = request(u + "/api/restore", "POST", raw, {"Content-Type": "multipart/form-data; boundary=b"})[0]
    assert 400 <= status < 500
    status, _, page = request(u + "/")
    assert status == 200 and b"<title>deblur</title>" in page and b"http" not in page.replace(b"http-equiv", b"")


def half_uploads(port: int, n: int, close: bool = False, path: str = "/api/restore",
                 fields: dict | None = None) -> tuple[list[socket.socket], bytes]:
    """n connections, each having sent its headers and half of a photo upload's body."""
    body, h = multipart({"preset": "fast"} if fields is None else fields, {"image": ("a.png", png_bytes())})
    extra = "Connection: close\r\n" if close else ""
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {h['Content-Type']}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode()
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(head + body[: len(body) // 2])
        conns.append(s)
    return conns, body


def test_a_stalled_upload_is_dropped_and_the_server_goes_on(server):
    # Slow clients: each holds a connection while it sends nothing; they are answered 408
    # after --upload-timeout, and a normal client is served meanwhile and after.
    slow, _ = half_uploads(server.port, 8)
    status, job = submit(server, {"preset": "fast"})
    assert status == 202 and wait(server, job["id"])["status"] == "done"
    for s in slow:
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        s.close()
    assert submit(server, {"preset": "fast"})[0] == 202


def test_clients_that_never_finish_their_headers_are_dropped_and_free_their_slots(server):
    # 70 connections (over the 64-connection limit) that send half a request line and
    # headers: without a header deadline they lock everyone out (503) while they stay open.
    slow = []
    for _ in range(70):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        s.sendall(b"POST /api/restore HTTP/1.1\r\nHost: x\r\nContent-Ty")
        slow.append(s)
    time.sleep(3)  # --upload-timeout 1
    for s in slow:
        answer = s.recv(4096)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]
        s.close()
    assert request(server.url + "/api/info")[0] == 200


def test_the_queue_limit_holds_for_uploads_in_parallel(served_weights, tmp_path):
    # 40 uploads whose bodies are all under way at once, while one long job runs: the
    # queue's limit (32 queued or running) counts them as they start, not as they end.
    srv = Server(served_weights, tmp_path, "--upload-timeout", "30")
    try:
        _, running = submit(srv, {"steps": "1000", "seed": "1"}, data=png_bytes(200, 240))
        conns, body = half_uploads(srv.port, 40, close=True)
        time.sleep(1)  # every upload has started before any finishes
        codes = []
        for s in conns:
            try:
                s.sendall(body[len(body) // 2:])
            except OSError:  # refused (429) before its body ended: the server may have closed it
                pass
            answer = b""
            try:
                while chunk := s.recv(65536):
                    answer += chunk
            except ConnectionResetError:
                pass
            codes.append(int(answer.split(b" ", 2)[1]))
            s.close()
        assert codes.count(202) == 31 and codes.count(429) == 9, codes  # 31 + the running one = 32
        request(f"{srv.url}/api/jobs/{running['id']}", "DELETE")
    finally:
        srv.stop()


def test_file_names_from_the_client_never_name_a_server_path(server):
    status, job = submit(server, {"preset": "fast"}, name="../../../../tmp/evil.png")
    done = wait(server, job["id"])
    assert done["name"] == "evil.png" and done["results"] == ["evil_deblurred.png"]
    assert not Path("/tmp/evil_deblurred.png").exists()


def test_cancel_a_queued_and_a_running_job(server):
    long = {"steps": "400", "seed": "1"}
    _, running = submit(server, long, data=png_bytes(200, 240))
    _, queued = submit(server, {"preset": "fast"})
    deadline = time.time() + 30
    while json.loads(request(f"{server.url}/api/jobs/{running['id']}")[2])["status"] != "running" and time.time() < deadline:
        time.sleep(0.05)
    status, _, body = request(f"{server.url}/api/jobs/{queued['id']}", "DELETE")
    assert status == 200 and json.loads(body)["status"] == "cancelled"
    status, _, body = request(f"{server.url}/api/jobs/{running['id']}", "DELETE")
    assert status == 200
    job = wait(server, running["id"])
    assert job["status"] == "cancelled" and job["step"] < 400
    assert request(f"{server.url}/api/jobs/{running['id']}/result")[0] == 409
    # A finished job is deleted with its files.
    _, done = submit(server, {"preset": "fast"})
    assert wait(server, done["id"])["status"] == "done"
    status, _, body = request(f"{server.url}/api/jobs/{done['id']}", "DELETE")
    assert status == 200 and json.loads(body)["status"] == "deleted"
    assert request(f"{server.url}/api/jobs/{done['id']}")[0] == 404
    assert request(f"{server.url}/api/jobs/{done['id']}/result")[0] == 404
    folders = [p for p in server.tmp.glob("deblur-serve-*/jobs/*")]
    assert all(running["id"] not in p.name and queued["id"] not in p.name for p in folders)


def test_token_required_off_localhost_and_checked(tiny_weights, tmp_path):
    r = subprocess.run([sys.executable, "-m", "deblurkit", "serve", "--weights", str(tiny_weights), "--host", "0.0.0.0",
                        "--port", str(_free_port())], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--token" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    srv = Server(tiny_weights, tmp_path, "--token", "s3cret")
    try:
        assert request(srv.url + "/api/info")[0] == 401
        assert request(srv.url + "/api/info", headers={"X-Deblur-Token": "wrong"})[0] == 401
        assert request(srv.url + "/api/info", headers={"X-Deblur-Token": "s3cret"})[0] == 200
        assert request(srv.url + "/api/info?token=s3cret")[0] == 200
        assert "?token=s3cret" in srv.banner
    finally:
        code, err = srv.stop()
    assert code == 130 and "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted"
    assert not list(tmp_path.glob("deblur-serve-*")), "the private folder is removed at exit"


def test_a_port_in_use_is_one_line(tiny_weights):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = subprocess.run([sys.executable, "-m", "deblurkit", "serve", "--weights", str(tiny_weights), "--port",
                            str(s.getsockname()[1])], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot listen there" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_workers_count_is_one_line(tiny_weights):
    r = subprocess.run([sys.executable, "-m", "deblurkit", "serve", "--weights", str(tiny_weights), "--port",
                        str(_free_port()), "--workers", "0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--workers 0" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_run_that_many_jobs_at_once(tiny_weights, tmp_path, monkeypatch, workers):
    # One job at a time on a CPU; on a GPU with memory to spare, several share the model.
    import threading

    import deblurkit.pipeline as pipeline
    from deblurkit import Deblurrer
    from deblurkit.presets import resolve_settings
    from deblurkit.serve.jobs import Job, JobQueue, default_workers

    assert default_workers(Deblurrer(weights=tiny_weights, device="cpu").device) == 1
    real, lock, running, most = pipeline.process_image, threading.Lock(), [0], [0]
    both = threading.Barrier(2, timeout=5)

    def counted(*a, **k):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            if workers == 2:
                both.wait()  # only returns if the other job is running too
            else:
                time.sleep(0.3)
            return real(*a, **k)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(pipeline, "process_image", counted)
    d = Deblurrer(weights=tiny_weights, device="cpu", tile=64)
    q = JobQueue(d, tmp_path, max_pixels=10**6, workers=workers)
    assert d.restorer.concurrent_jobs == workers
    jobs = []
    for i in range(2 if workers == 2 else 3):
        job_id, folder = q.new_folder()
        Image.fromarray(np.round(smooth_image(40, 56, i) * 255).astype(np.uint8)).save(folder / "in" / f"p{i}.png")
        jobs.append(q.submit(Job(job_id, f"p{i}.png", folder, resolve_settings(preset="fast"), seed=0)))
    deadline = time.time() + 60
    while any(j.status in ("queued", "running") for j in jobs) and time.time() < deadline:
        time.sleep(0.05)
    q.close()
    assert [j.status for j in jobs] == ["done"] * len(jobs), [j.error for j in jobs]
    assert most[0] == workers


def _browser():
    """Headless Chromium through Selenium, or a skip that says what is missing."""
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chrome or not driver:
        pytest.skip("no Chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,1100",
                 "--force-device-scale-factor=1"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: errors and failed loads
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture
def browser():
    """A headless Chromium for one test (closed after it), or a skip that says what is missing."""
    b = _browser()
    yield b
    b.quit()


def _console_errors(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _open_page(browser, url, *photos):
    """The page, loaded, with `photos` added through its file input; the shown panel."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 60).until(lambda b: "model" in b.find_element(By.ID, "model").text)
    if photos:
        browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in photos))
        WebDriverWait(browser, 30).until(lambda b: _shown_panel(b) is not None)
    return _shown_panel(browser)


def _shown_panel(browser):
    from selenium.webdriver.common.by import By

    shown = [p for p in browser.find_elements(By.CSS_SELECTOR, ".panel") if p.is_displayed()]
    return shown[0] if len(shown) == 1 else None


def _restore_in_page(browser, panel, preset="fast", timeout=60, **fields):
    """Start a full-size restore from the shown panel; the job's row in the list once the
    server has taken it (its id in data-job)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    Select(panel.find_element(By.CSS_SELECTOR, "select.preset")).select_by_value(preset)
    if fields:
        details = panel.find_element(By.CSS_SELECTOR, "details.advanced")
        if not details.get_attribute("open"):
            details.find_element(By.CSS_SELECTOR, "summary").click()
    for k, v in fields.items():
        box = panel.find_element(By.CSS_SELECTOR, "." + k)
        box.clear()
        box.send_keys(str(v))
    ids = lambda: {r.get_attribute("data-job"): r for r in browser.find_elements(By.CSS_SELECTOR, ".job-row[data-job]")}  # noqa: E731
    known = set(ids())
    panel.find_element(By.CSS_SELECTOR, "button.full").click()
    new = WebDriverWait(browser, timeout).until(lambda b: [r for i, r in ids().items() if i not in known])
    return new[0]


def _job_state(server, job_id):
    return json.loads(request(f"{server.url}/api/jobs/{job_id}")[2])


def test_the_page_in_a_real_browser_uploads_previews_and_shows_the_result(server, tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "street.png"
    photo.write_bytes(png_bytes(96, 128, seed=4))
    card = _open_page(browser, server.url + "/", photo)
    wait = WebDriverWait(browser, 60)
    assert card.find_element(By.CSS_SELECTOR, ".name").text == "street.png"
    card.find_element(By.CSS_SELECTOR, "button.preview").click()
    # The input and one labelled preview per preset, each image loaded, at 1:1 (one
    # photo pixel per CSS pixel at this window's scale factor 1).
    wait.until(lambda b: b.execute_script(
        "return [...arguments[0].querySelectorAll('.pv img')].filter(i => i.complete && i.naturalWidth).length", card) == 5)
    captions = [f.find_element(By.CSS_SELECTOR, "b").text for f in card.find_elements(By.CSS_SELECTOR, ".previews figure")]
    assert captions == ["input", "fast", "balanced", "distortion", "perception"]
    sizes = browser.execute_script("return [...arguments[0].querySelectorAll('.pv img')].map(i => "
                                   "[i.getBoundingClientRect().width, i.naturalWidth])", card)
    assert all(abs(shown - natural) < 0.5 for shown, natural in sizes), sizes
    # The recommended preset is marked; clicking another marks it instead, chooses it
    # and shows its preview beside the input in the compare view.
    pressed = lambda: [f.get_attribute("data-preset") for f in card.find_elements(  # noqa: E731
        By.CSS_SELECTOR, ".pv[aria-pressed='true']")]
    assert pressed() == ["balanced"]
    card.find_element(By.CSS_SELECTOR, ".pv[data-preset='perception']").click()
    assert pressed() == ["perception"]
    assert card.find_element(By.CSS_SELECTOR, "select.preset").get_attribute("value") == "perception"
    chosen = card.find_element(By.CSS_SELECTOR, ".pv[data-preset='perception']")
    assert chosen.value_of_css_property("border-top-color") != "rgba(0, 0, 0, 0)"  # the visible outline
    wait.until(lambda b: "perception" in card.find_element(By.CSS_SELECTOR, ".viewer-title").text)
    shown = card.find_element(By.CSS_SELECTOR, "img.after").get_attribute("src")
    assert "/api/jobs/" in shown and "/result" in shown
    browser.save_screenshot(str(tmp_path / "previews.png"))

    card.find_element(By.CSS_SELECTOR, "button.full").click()
    wait.until(lambda b: "full size" in card.find_element(By.CSS_SELECTOR, ".viewer-title").text)
    after = card.find_element(By.CSS_SELECTOR, "img.after")
    wait.until(lambda b: b.execute_script("return arguments[0].complete && arguments[0].naturalWidth", after) == 128)
    link = card.find_element(By.CSS_SELECTOR, "a.download")
    assert link.get_attribute("download") == "street_deblurred.png"
    body = request(link.get_attribute("href"))[2]
    assert Image.open(io.BytesIO(body)).size == (128, 96)
    assert not card.find_element(By.CSS_SELECTOR, ".error").is_displayed()
    # The two sides are labelled where they show.
    assert card.find_element(By.CSS_SELECTOR, ".tag-before").text == "input"
    assert card.find_element(By.CSS_SELECTOR, ".tag-after").text == "restored"
    # The favicon: linked, served (200, SVG), and nothing on the page failed to load.
    icon = browser.find_element(By.CSS_SELECTOR, "link[rel='icon']").get_attribute("href")
    status, headers, _ = request(icon)
    assert status == 200 and headers["content-type"].startswith("image/svg+xml")
    assert request(server.url + "/favicon.ico")[0] == 200
    assert _console_errors(browser) == []
    browser.save_screenshot(str(tmp_path / "result.png"))
    shot = os.environ.get("DEBLUR_SCREENSHOT")
    if shot:  # a screenshot: DEBLUR_SCREENSHOT=shot.png pytest tests/test_serve.py -k browser
        browser.save_screenshot(shot)


def test_the_compare_view_has_a_divider_and_one_zoom_for_both_sides_in_a_real_browser(server, tmp_path, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "wall.png"
    photo.write_bytes(png_bytes(200, 240, seed=6))
    card = _open_page(browser, server.url + "/", photo)
    _restore_in_page(browser, card, "fast")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: b.execute_script("const i = arguments[0].querySelector('img.after'); "
                                          "return i && i.complete && i.naturalWidth", card) == 240)
    view = card.find_element(By.CSS_SELECTOR, ".view")
    divider = card.find_element(By.CSS_SELECTOR, ".divider")
    layer = card.find_element(By.CSS_SELECTOR, ".after-layer")
    # The divider: at the middle, dragged left, the restored side's clip follows it.
    assert divider.get_attribute("role") == "slider" and divider.get_attribute("aria-valuenow") == "50"
    clip = layer.value_of_css_property("clip-path")
    x0 = divider.rect["x"]
    ActionChains(browser).click_and_hold(divider).move_by_offset(-200, 0).release().perform()
    moved = int(divider.get_attribute("aria-valuenow"))
    width = view.rect["width"]
    assert abs(moved - (50 - 100 * 200 / width)) <= 1, (moved, width)
    assert layer.value_of_css_property("clip-path") != clip
    assert abs(divider.rect["x"] - (x0 - 200)) <= 2
    # ... and by the keyboard (the slider's arrow keys).
    divider.send_keys(Keys.ARROW_RIGHT)
    assert int(divider.get_attribute("aria-valuenow")) == moved + 2
    assert card.find_element(By.CSS_SELECTOR, ".tag-before").is_displayed()
    assert card.find_element(By.CSS_SELECTOR, ".tag-after").is_displayed()
    browser.save_screenshot(str(tmp_path / "divider.png"))

    def view_state():
        return browser.execute_script("""
            const c = arguments[0], b = c.querySelector('img.before'), a = c.querySelector('img.after');
            const r = (i) => { const q = i.getBoundingClientRect(); return [q.x, q.y, q.width, q.height]; };
            return {scale: Number(c.querySelector('.view').dataset.scale), before: r(b), after: r(a),
                    tb: getComputedStyle(b).transform, ta: getComputedStyle(a).transform, natural: b.naturalWidth};""", card)

    # Zoom: +, the wheel, 1:1 and fit; both sides always under the same transform.
    start = view_state()
    card.find_element(By.CSS_SELECTOR, ".zoom-in").click()
    zoomed = view_state()
    assert zoomed["scale"] > start["scale"] and zoomed["tb"] == zoomed["ta"] and zoomed["before"] == zoomed["after"]
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(view), 0, -300).perform()
    wheeled = view_state()
    assert wheeled["scale"] > zoomed["scale"] and wheeled["before"] == wheeled["after"]
    # Dragging the view pans both sides together.
    ActionChains(browser).move_to_element_with_offset(view, 100, 0).click_and_hold() \
        .move_by_offset(-60, -40).release().perform()
    panned = view_state()
    assert panned["before"] == panned["after"] and panned["before"][:2] != wheeled["before"][:2]
    card.find_element(By.CSS_SELECTOR, ".zoom-1").click()
    one = view_state()
    assert one["scale"] == 1 and one["tb"] == one["ta"] and one["tb"].startswith("matrix(1, 0, 0, 1,")
    assert abs(one["before"][2] - one["natural"]) < 0.5 and one["before"] == one["after"]
    assert card.find_element(By.CSS_SELECTOR, ".zoom-level").text == "100%"
    browser.save_screenshot(str(tmp_path / "one_to_one.png"))
    card.find_element(By.CSS_SELECTOR, ".zoom-fit").click()
    fit = view_state()
    rect = view.rect
    assert fit["before"] == fit["after"]
    assert abs(fit["before"][3] - rect["height"]) < 1 or abs(fit["before"][2] - rect["width"]) < 1
    view.send_keys("1")  # the keyboard's 1:1
    assert view_state()["scale"] == 1
    assert _console_errors(browser) == []


def test_a_running_job_is_cancelled_from_the_page(server, tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "long.png"
    photo.write_bytes(png_bytes(200, 240, seed=7))
    card = _open_page(browser, server.url + "/", photo)
    row = _restore_in_page(browser, card, "balanced", steps=400, seed=1)
    job_id = row.get_attribute("data-job")
    wait = WebDriverWait(browser, 60)
    state = card.find_element(By.CSS_SELECTOR, ".state")
    # Progress in words from the first moment, then the steps and the time left.
    wait.until(lambda b: "refining, step" in state.text and "left" in state.text)
    assert _job_state(server, job_id)["status"] == "running"
    browser.save_screenshot(str(tmp_path / "running.png"))
    card.find_element(By.CSS_SELECTOR, "button.cancel").click()
    wait.until(lambda b: _job_state(server, job_id)["status"] == "cancelled")
    wait.until(lambda b: "cancelled" in state.text)
    assert "cancelled" in row.text and not card.find_element(By.CSS_SELECTOR, "button.cancel").is_displayed()
    assert _job_state(server, job_id)["step"] < 400
    browser.save_screenshot(str(tmp_path / "cancelled.png"))


def test_several_photos_in_one_visit_each_with_its_jobs(server, tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    first = tmp_path / "first.png"
    first.write_bytes(png_bytes(96, 128, seed=8))
    second = tmp_path / "second.tif"  # 16-bit TIFF: no browser shows it, the server's PNG is the thumbnail
    Image.fromarray(np.round(smooth_image(120, 150, 9) * 65535).astype(np.uint16)[..., 0]).save(second)
    _open_page(browser, server.url + "/", first, second)
    wait = WebDriverWait(browser, 60)
    names = lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".photo-row .pname")]  # noqa: E731
    assert names() == ["first.png", "second.tif"]
    thumbs = lambda: browser.execute_script(  # noqa: E731
        "return [...document.querySelectorAll('.panel .thumb')].map(i => i.complete ? i.naturalWidth : 0)")
    wait.until(lambda b: thumbs() == [128, 150])
    rows = browser.find_elements(By.CSS_SELECTOR, ".photo-row")
    card1 = _shown_panel(browser)
    job1 = _restore_in_page(browser, card1, "fast").get_attribute("data-job")
    rows[1].click()
    card2 = _shown_panel(browser)
    assert card2.find_element(By.CSS_SELECTOR, ".name").text == "second.tif" and not card1.is_displayed()
    card2.find_element(By.CSS_SELECTOR, "input.kernel").click()  # and the blur kernel, shown when found
    job2 = _restore_in_page(browser, card2, "balanced").get_attribute("data-job")
    # Both jobs are listed under their photos, each with its state.
    entries = browser.find_elements(By.CSS_SELECTOR, ".photo-entry")
    listed = [[r.get_attribute("data-job") for r in e.find_elements(By.CSS_SELECTOR, ".job-row")] for e in entries]
    assert listed == [[job1], [job2]]
    states = lambda: [e.find_element(By.CSS_SELECTOR, ".job-row .jstate").text for e in entries]  # noqa: E731
    assert all(s for s in states())
    wait.until(lambda b: all(s.startswith("done") for s in states()))
    assert {_job_state(server, j)["status"] for j in (job1, job2)} == {"done"}
    wait.until(lambda b: card2.find_element(By.CSS_SELECTOR, ".kernelfig").is_displayed())
    kernel = _job_state(server, job2)["kernel"]
    assert kernel["reason"] and card2.find_element(By.CSS_SELECTOR, ".kernelfig figcaption").text
    if kernel["image"]:
        kernel_img = card2.find_element(By.CSS_SELECTOR, ".kernel-img")
        wait.until(lambda b: b.execute_script("return arguments[0].naturalWidth", kernel_img) > 0)
    browser.save_screenshot(str(tmp_path / "second.png"))
    # Selecting a job shows its photo and its result.
    browser.find_element(By.CSS_SELECTOR, f".job-row[data-job='{job1}']").click()
    assert _shown_panel(browser) == card1
    wait.until(lambda b: job1 in card1.find_element(By.CSS_SELECTOR, "img.after").get_attribute("src"))
    browser.find_element(By.CSS_SELECTOR, f".job-row[data-job='{job2}']").click()
    assert _shown_panel(browser) == card2
    wait.until(lambda b: job2 in card2.find_element(By.CSS_SELECTOR, "img.after").get_attribute("src"))
    browser.save_screenshot(str(tmp_path / "several.png"))
    assert _console_errors(browser) == []


def test_the_page_works_with_a_token_in_a_real_browser(tiny_weights, tmp_path, browser):
    # Opened as /?token=...: its own style sheet and script are relative links without the
    # query; they must load (the token comes back as a cookie), or the page is dead.
    srv = Server(tiny_weights, tmp_path, "--token", "s3cret")
    try:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        photo = tmp_path / "grey.tif"  # the thumbnail comes from the server: the token goes with that request too
        Image.fromarray(np.round(smooth_image(60, 80, 2) * 65535).astype(np.uint16)[..., 0]).save(photo)
        card = _open_page(browser, srv.url + "/?token=s3cret", photo)
        loaded = browser.execute_script("return [...document.styleSheets].some(s => s.href && s.href.endsWith('static/style.css') && s.cssRules.length > 0)")
        assert loaded
        wait = WebDriverWait(browser, 60)
        thumb = card.find_element(By.CSS_SELECTOR, ".thumb")
        wait.until(lambda b: b.execute_script("return arguments[0].naturalWidth", thumb) == 80)
        _restore_in_page(browser, card, "fast")
        wait.until(lambda b: b.execute_script("const i = arguments[0].querySelector('img.after'); "
                                              "return i && i.complete && i.naturalWidth", card) == 80)
        assert _console_errors(browser) == []
        # Without the token the page's files stay closed.
        assert request(srv.url + "/static/app.js")[0] == 401
    finally:
        srv.stop()


def test_sigterm_stops_as_ctrl_c_does_and_removes_the_uploads(tiny_weights, tmp_path):
    srv = Server(tiny_weights, tmp_path)
    status, job = submit(srv, {"preset": "fast"})
    assert status == 202 and wait(srv, job["id"])["status"] == "done"
    assert list(tmp_path.glob("deblur-serve-*"))  # the private folder holds the upload
    srv.proc.send_signal(signal.SIGTERM)  # kill, systemd, docker stop
    _, err = srv.proc.communicate(timeout=30)
    assert srv.proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted", err
    assert not list(tmp_path.glob("deblur-serve-*"))
