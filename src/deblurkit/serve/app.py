"""The HTTP API and the page: a thin web front end over the job queue (Starlette / FastAPI).

Every client input is checked here and answered with a 4xx and its reason; the pipeline
behind it is the CLI's own. Nothing the client sends names a path on the server: uploads
are stored under a fresh job id with a sanitised file name.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import shutil
import secrets
import unicodedata
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile

from .. import __version__
from ..errors import DeblurError
from ..io import parse_region, preview_region
from ..io.discover import sniff_image
from ..io.header import header_size
from ..presets import PRESETS, check_settings, resolve_settings
from .jobs import Job, JobQueue

TOKEN_HEADER = "x-deblur-token"
# The page opened as /?token=... gets the token as a cookie too: the browser then sends it
# with the page's own style sheet and script (relative links that drop the query).
TOKEN_COOKIE = "deblur_token"
FIELDS = ("preset", "steps", "noise_ceiling", "samples", "average", "seed", "region", "std", "sampler", "kernel")
MAX_NAME = 120
CHUNK = 1 << 20
THUMB_SIDE = 1024  # the longest side of /api/thumbnail's picture


class ClientError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class BodyTooLarge(Exception):
    pass


def safe_name(raw: str | None) -> str:
    """The upload's own file name as the seed key (so results match `deblur NAME`), cut to
    its last path component and stripped of control characters; never a path."""
    name = unicodedata.normalize("NFC", (raw or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    if not name:
        return "upload.png"
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_NAME - len(ext) - 1] + "." + ext) if dot and len(ext) <= 8 else name[:MAX_NAME]
    return name


def _int(form, key: str, lo: int, hi: int) -> int | None:
    v = form.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str) or not re.fullmatch(r"\d{1,20}", v.strip()):
        raise ClientError(400, f"{key}: expected a whole number, got {str(v)[:40]!r}")
    n = int(v)
    if not lo <= n <= hi:
        raise ClientError(400, f"{key} {n}: must be in [{lo}, {hi}]")
    return n


def _bool(form, key: str) -> bool | None:
    v = form.get(key)
    if v is None or v == "":
        return None
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ClientError(400, f"{key}: expected true or false, got {s[:40]!r}")


def _float(form, key: str) -> float | None:
    v = form.get(key)
    if v is None or v == "":
        return None
    try:
        x = float(str(v))
    except ValueError:
        raise ClientError(400, f"{key}: expected a number, got {str(v)[:40]!r}") from None
    if not 0.0 < x < 1.0:
        raise ClientError(400, f"{key} {x:g}: must be in (0, 1)")
    return x


def _job_settings(form, recommended: str, max_steps: int, max_samples: int):
    unknown = sorted(set(form.keys()) - set(FIELDS) - {"image"})
    if unknown:
        raise ClientError(400, f"unknown field(s): {', '.join(u[:40] for u in unknown[:5])} (known: image, {', '.join(FIELDS)})")
    preset = form.get("preset") or None
    if preset is not None and preset not in PRESETS:
        raise ClientError(400, f"preset {str(preset)[:40]!r}: expected one of {', '.join(PRESETS)}")
    sampler = form.get("sampler") or None
    if sampler is not None and sampler not in ("ddpm", "ddim"):
        raise ClientError(400, f"sampler {str(sampler)[:40]!r}: expected ddpm or ddim")
    std = bool(_bool(form, "std"))
    try:
        settings = resolve_settings(
            preset, recommended if preset is None else preset,
            steps=_int(form, "steps", 0, max_steps), samples=_int(form, "samples", 1, max_samples),
            average=_bool(form, "average"), noise_ceiling=_float(form, "noise_ceiling"), sampler=sampler,
            wants_samples=std)
        check_settings(settings, std)
        region = form.get("region") or None
        if region is not None:
            region = preview_region() if region == "preview" else parse_region(str(region)[:80])
    except (DeblurError, ValueError) as e:
        raise ClientError(400, str(e).replace("--", "").replace("_", " ")) from None
    seed = _int(form, "seed", 0, 2**64 - 1)
    kernel = form.get("kernel") or "none"
    if kernel not in ("auto", "none"):
        raise ClientError(400, f"kernel {str(kernel)[:40]!r}: expected auto or none")
    return settings, std, region, seed, kernel == "auto"


def create_app(jobs: JobQueue, *, token: str | None = None, max_upload_bytes: int = 256 << 20,
               recommended: str = "balanced", max_steps: int = 1000, max_samples: int = 16,
               upload_timeout: float = 20.0) -> FastAPI:
    app = FastAPI(title="deblur", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    static = resources.files("deblurkit.serve") / "static"

    @app.middleware("http")
    async def guard(request: Request, call_next):
        # The token (when one is required) as a header, ?token= or the page's cookie; then
        # the body's size, by its declared length and, for a chunked upload, by counting
        # what arrives.
        if token is not None:
            given = (request.headers.get(TOKEN_HEADER) or request.query_params.get("token")
                     or request.cookies.get(TOKEN_COOKIE) or "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"error": "missing or wrong token (header X-Deblur-Token or ?token=)"}, 401)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_upload_bytes):
            return JSONResponse({"error": f"upload larger than {max_upload_bytes} bytes"}, 413,
                                headers={"Connection": "close"})
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, e: RequestValidationError):
        # FastAPI's own 422 body for a query parameter of the wrong type: the project's 400.
        first = (e.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid value')}"[:200]}, 400)

    @app.exception_handler(ClientError)
    async def client_error(request: Request, e: ClientError):
        return JSONResponse({"error": e.message}, e.status, headers=e.headers)

    @app.get("/")
    async def page():
        response = Response((static / "index.html").read_bytes(), media_type="text/html; charset=utf-8")
        if token is not None:  # the guard has checked it: the page's own files need it too
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/favicon.ico")
    async def favicon():  # what browsers ask for by themselves; the page links the same picture
        return Response((static / "favicon.svg").read_bytes(), media_type="image/svg+xml")

    @app.get("/static/{name}")
    async def static_file(name: str):
        kinds = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        suffix = Path(name).suffix
        if not re.fullmatch(r"[a-z0-9_-]+\.(js|css|svg)", name) or not (static / name).is_file():
            raise ClientError(404, "no such file")
        return Response((static / name).read_bytes(), media_type=kinds[suffix])

    @app.get("/api/info")
    async def info():
        return {"version": __version__, "model": jobs.deblurrer.model_name, "recommended": recommended,
                "presets": {k: {"steps": p.steps, "samples": p.samples, "average": p.average, "help": p.help}
                            for k, p in PRESETS.items()},
                "max_pixels": jobs.max_pixels, "max_upload_bytes": max_upload_bytes, "workers": jobs.workers}

    @app.post("/api/restore", status_code=202)
    async def restore(request: Request):
        if not jobs.reserve():  # a place in the queue before the upload is read, so parallel uploads count
            raise ClientError(429, f"{jobs.max_queued} jobs are waiting already; try again when some are done")
        submitted = False
        try:
            answer = await _accept(request)
            submitted = True
            return answer
        finally:
            if not submitted:
                jobs.release()

    def _check_request(request: Request) -> None:
        """Before reading a body: room on disk, and a multipart form."""
        if shutil.disk_usage(jobs.root).free < 2 * max_upload_bytes:
            raise ClientError(507, "the server's disk is nearly full; try again when older results have been removed")
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise ClientError(415, "send multipart/form-data with the photo in the field 'image'")

    async def _read_photo_form(request: Request):
        """The form and its photo field (not saved yet: the caller checks the other fields first)."""
        form = await _read_form(request, max_upload_bytes, upload_timeout)
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise ClientError(400, "no photo: send it in the multipart field 'image'")
        return form, upload

    async def _save_photo(upload: UploadFile, folder: Path) -> tuple[str, Path]:
        """The photo saved under folder/in, checked to be one this tool reads, within the pixel limit."""
        name = safe_name(upload.filename)
        path = folder / "in" / name
        await _save(upload, path, max_upload_bytes)
        if sniff_image(path) is None:
            raise ClientError(415, f"{name}: not a photo this tool reads (PNG, JPEG, TIFF, WebP, BMP)")
        _check_pixels(path, name, jobs.max_pixels)
        return name, path

    async def _accept(request: Request):
        _check_request(request)
        job_id, folder = jobs.new_folder()
        try:
            form, upload = await _read_photo_form(request)
            settings, std, region, seed, kernel = _job_settings(form, recommended, max_steps, max_samples)
            name, _ = await _save_photo(upload, folder)
        except BodyTooLarge:
            jobs.discard(folder)
            raise ClientError(413, f"upload larger than {max_upload_bytes} bytes", {"Connection": "close"}) from None
        except BaseException:
            jobs.discard(folder)
            raise
        if seed is None:
            seed = secrets.randbelow(2**31 - 1)  # as the CLI: a fresh seed, reported back
        job = jobs.submit(Job(job_id, name, folder, settings, seed, std=std, region=region, kernel=kernel),
                          reserved=True)
        return {"id": job.id, "status": job.status, "seed": seed}

    def _job(job_id: str) -> Job:
        job = jobs.get(job_id) if re.fullmatch(r"[0-9a-f]{32}", job_id) else None
        if job is None:
            raise ClientError(404, f"no job {job_id[:40]!r} (finished jobs are kept for a limited time)")
        return job

    @app.get("/api/jobs/{job_id}")
    async def status(job_id: str):
        return _job(job_id).to_dict()

    def _file(job: Job, path: Path | None, what: str):
        if job.status != "done":
            raise ClientError(409, f"job {job.id} is {job.status}, not done")
        if path is None or not path.is_file():
            raise ClientError(404, f"job {job.id} has no {what}")
        return FileResponse(path, media_type="image/png", filename=path.name)

    @app.get("/api/jobs/{job_id}/result")
    async def result(job_id: str, index: int = 0):
        job = _job(job_id)
        outputs = job.outputs
        if not 0 <= index < max(1, len(outputs)):
            raise ClientError(404, f"job {job.id} has {len(outputs)} result(s); index {index} is none of them")
        return _file(job, outputs[index] if outputs else None, "result")

    @app.get("/api/jobs/{job_id}/std")
    async def std_map(job_id: str):
        job = _job(job_id)
        return _file(job, job.std_map, "std map (ask for std with several samples)")

    @app.get("/api/jobs/{job_id}/before")
    async def before(job_id: str):
        job = _job(job_id)
        return _file(job, job.folder / "before.png", "input preview")

    @app.get("/api/jobs/{job_id}/kernel")
    async def kernel_image(job_id: str):
        job = _job(job_id)
        return _file(job, job.kernel_image, "kernel (ask for kernel=auto; a photo too small or too flat has none)")

    thumbnails = asyncio.Semaphore(1)  # decoding a large photo takes memory: one at a time
    # Uploads for thumbnails in flight, bounded as the job queue bounds restores: each may
    # hold up to max_upload_bytes on disk twice (the spooled body and its saved copy).
    thumbnail_uploads = {"in_flight": 0, "limit": 4}

    @app.post("/api/thumbnail")
    async def thumbnail(request: Request):
        """The photo as the page can show it before any job (browsers show no TIFF): an
        upright 8-bit PNG, THUMB_SIDE px at most a side, with the photo's own size in
        X-Image-Width and X-Image-Height. Nothing is kept."""
        _check_request(request)
        if thumbnail_uploads["in_flight"] >= thumbnail_uploads["limit"]:
            raise ClientError(429, f"{thumbnail_uploads['limit']} thumbnails are being made already; try again in a moment")
        thumbnail_uploads["in_flight"] += 1
        _, folder = jobs.new_folder()
        try:
            form, upload = await _read_photo_form(request)
            if set(form.keys()) != {"image"}:
                raise ClientError(400, "a thumbnail takes the field 'image' alone")
            _, path = await _save_photo(upload, folder)
            async with thumbnails:
                try:
                    data, (w, h) = await asyncio.to_thread(_thumbnail, path, jobs.max_pixels, THUMB_SIDE)
                except DeblurError as e:
                    raise ClientError(415, str(e).replace(str(folder / "in") + "/", "")) from None
        except BodyTooLarge:
            raise ClientError(413, f"upload larger than {max_upload_bytes} bytes", {"Connection": "close"}) from None
        finally:
            thumbnail_uploads["in_flight"] -= 1
            jobs.discard(folder)
        return Response(data, media_type="image/png", headers={"X-Image-Width": str(w), "X-Image-Height": str(h),
                                                               "Cache-Control": "no-store"})

    @app.delete("/api/jobs/{job_id}")
    async def cancel(job_id: str):
        job = jobs.cancel(_job(job_id).id)
        return {"id": job.id, "status": job.status}

    return app


async def _read_form(request: Request, limit: int, idle_seconds: float):
    """The multipart form, with the body counted as it arrives (a chunked upload has no
    declared length) and bounded numbers of fields and files."""
    seen = 0
    receive = request._receive

    async def counted():
        nonlocal seen
        try:  # a client that stops sending holds a connection slot: not for long
            message = await asyncio.wait_for(receive(), timeout=idle_seconds)
        except asyncio.TimeoutError:
            raise ClientError(408, f"the upload stalled for {idle_seconds:g} s") from None
        seen += len(message.get("body", b""))
        if seen > limit:
            raise BodyTooLarge()
        return message

    request._receive = counted
    try:
        return await request.form(max_files=1, max_fields=len(FIELDS) + 1, max_part_size=64 * 1024)
    except (BodyTooLarge, ClientError):
        raise
    except Exception as e:  # a malformed body: the parser's reason, as a 400
        raise ClientError(400, f"cannot read the form ({str(e)[:200] or type(e).__name__})") from None


async def _save(upload: UploadFile, path: Path, limit: int) -> None:
    total = 0
    with open(path, "wb") as f:
        while chunk := await upload.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise BodyTooLarge()
            f.write(chunk)
    if total == 0:
        raise ClientError(400, f"{path.name}: the uploaded file is empty")


def _thumbnail(path: Path, max_pixels: int, side: int) -> tuple[bytes, tuple[int, int]]:
    """The photo, upright, shrunk to `side` px at most (from its compact pixels: no
    full-size float copy), as an 8-bit PNG; and its own size."""
    import cv2

    from ..io import encode_image, read_image
    from ..io.read import pixels_to_unit

    image = read_image(path, max_pixels)
    w, h = image.size
    pixels = image.pixels
    f = side / max(w, h)
    if f < 1:
        pixels = cv2.resize(pixels, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return encode_image(pixels_to_unit(pixels), "PNG"), (w, h)


def _check_pixels(path: Path, name: str, max_pixels: int) -> None:
    """Refuse a photo over the pixel limit from its header, before anything decodes it
    (io.header: without Pillow's global bomb limit, which no request may depend on)."""
    size = header_size(path)
    if size is None:  # Pillow cannot size it: the pipeline's reader says why
        return
    w, h = size
    if w * h > max_pixels:
        raise ClientError(413, f"{name}: {w}x{h} is {w * h} pixels, over the server's limit of {max_pixels}")
