"""`deblur serve`: start the local web page and its HTTP API (deblurkit.serve)."""

from __future__ import annotations

import atexit
import shutil
import signal
import socket
import tempfile
import webbrowser
from pathlib import Path
from typing import Optional

import typer

from ..errors import DeblurError, UsageError
from ..io import DEFAULT_MAX_PIXELS
from .app import app
from .common import EXIT_INTERRUPTED, err_console, raise_interrupt, report


def _private_root() -> Path:
    """One private folder (0700) for every upload, result and the multipart parser's spool
    files, removed when the server stops."""
    root = Path(tempfile.mkdtemp(prefix="deblur-serve-"))
    atexit.register(shutil.rmtree, root, True)
    tempfile.tempdir = str(root / "spool")  # what Starlette's SpooledTemporaryFile writes to
    (root / "spool").mkdir()
    (root / "jobs").mkdir()
    return root


@app.command("serve", short_help="Restore photos in a local web page (needs deblurkit[serve]).",
             help="A local web page to restore photos by looking, with the HTTP API it uses "
             "(needs: pip install 'deblurkit[serve]').")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (anything but localhost needs --token or --no-auth)."),
    port: int = typer.Option(7860, "--port", help="Port to listen on."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name from weights.toml."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Checkpoint file or hf://OWNER/REPO/FILE[@REV]."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Largest photo accepted (413 beyond)."),
    max_upload_mb: int = typer.Option(256, "--max-upload-mb", help="Largest upload in MiB (413 beyond)."),
    upload_timeout: float = typer.Option(20.0, "--upload-timeout", help="Seconds a request's headers or upload may stall before it is dropped (408)."),
    token: Optional[str] = typer.Option(None, "--token", help="Secret every request must carry (header X-Deblur-Token or ?token=)."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve another --host without a token (anyone who reaches it can use it)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the browser."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, mps."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Jobs run at once [default: 1 on a CPU; on a GPU one per 8 GiB free, at most 4]."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
):
    try:
        try:
            import fastapi  # noqa: F401
            import multipart  # noqa: F401  (python-multipart)
            import uvicorn
        except ImportError as e:
            raise UsageError(f"deblur serve needs the serve extra ({e.name} is missing): pip install 'deblurkit[serve]'") from None
        if not 1 <= port <= 65535:
            raise UsageError(f"--port {port}: must be in [1, 65535]")
        if not 0 < upload_timeout <= 3600:
            raise UsageError(f"--upload-timeout {upload_timeout:g}: must be in (0, 3600] seconds")
        if workers is not None and not 1 <= workers <= 64:
            raise UsageError(f"--workers {workers}: must be in [1, 64]")
        if max_pixels < 1 or not 1 <= max_upload_mb <= 1 << 20:
            raise UsageError("--max-pixels and --max-upload-mb must be positive")
        local = host in ("127.0.0.1", "localhost", "::1")
        if token is not None and not token.strip():
            raise UsageError("--token: must not be empty")
        if not local and token is None and not no_auth:
            raise UsageError(f"--host {host}: the page would be open to the network; give --token SECRET (or --no-auth)")
        from ..api import Deblurrer, recommended_preset
        from ..serve.app import create_app
        from ..serve.jobs import JobQueue, default_workers

        deblurrer = Deblurrer(model, weights=weights, device=device)
        root = _private_root()
        jobs = JobQueue(deblurrer, root / "jobs", max_pixels,
                        workers=workers if workers is not None else default_workers(deblurrer.device))
        web = create_app(jobs, token=token, max_upload_bytes=max_upload_mb << 20,
                         recommended=recommended_preset(model, weights), upload_timeout=upload_timeout)
    except DeblurError as e:
        raise report(e, debug)

    try:  # bound here, so a port in use is one line, not a server log
        sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as e:
        jobs.close()
        raise report(UsageError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})"), debug)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}/" + (f"?token={token}" if token else "")
    if not local:
        err_console.print(f"[yellow]warning:[/] serving on {host}: reachable from other machines"
                          + ("" if token else " by anyone (--no-auth)"), soft_wrap=True)
    at_once = f", {jobs.workers} jobs at once" if jobs.workers > 1 else ""
    print(f"deblur serve: model {deblurrer.model_name} on {deblurrer.device}{at_once}; open {url}  (Ctrl-C stops)", flush=True)
    if open_browser:
        webbrowser.open(url)
    # Bounded connections and header sizes: a flood of clients gets 503s, not the memory;
    # headers that never end are dropped after --upload-timeout too (serve.protocol).
    from ..serve.protocol import with_header_deadline

    config = uvicorn.Config(web, host=host, port=port, log_level="warning", limit_concurrency=64,
                            timeout_keep_alive=5, h11_max_incomplete_event_size=64 * 1024, access_log=False,
                            http=with_header_deadline(upload_timeout))
    server = uvicorn.Server(config)
    # uvicorn stops cleanly on SIGTERM, then raises the signal again under the handler it
    # found: Python's default would end the process (143) before the clean-up below and
    # atexit run. SIGTERM (kill, systemd, docker stop) is taken as Ctrl-C instead.
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        jobs.close()
    # Here only after Ctrl-C or SIGTERM.
    err_console.print("interrupted", soft_wrap=True)
    raise typer.Exit(EXIT_INTERRUPTED)
