"""The server's job queue: one model in memory, jobs run one at a time (several at once on
a GPU with memory to spare), results kept for a while.

A job is one uploaded photo and its settings. It runs through the same
`pipeline.process_image` as `deblur photo.png`, with the upload's file name as the seed key,
so a job's result has the bytes the CLI writes for that name, seed and settings. Everything
a job writes lives in its own folder under the queue's private root, which is removed when
the job is dropped and, whole, when the server stops.
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..io import InputItem, Region, plan_outputs
from ..presets import Settings

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Deblurrer

# A GPU runs a job per this much free memory at start-up (at most MAX_WORKERS); a CPU one
# job at a time, since one job already uses every core and two only slow each other.
GPU_BYTES_PER_WORKER = 8 << 30
MAX_WORKERS = 4


def default_workers(device) -> int:
    """How many jobs run at once when --workers is not given."""
    from ..devices import available_memory

    if getattr(device, "type", str(device)) != "cuda":
        return 1
    return max(1, min(MAX_WORKERS, available_memory(device) // GPU_BYTES_PER_WORKER))


class JobCancelled(Exception):
    """Raised from the progress callback to stop a running chain between steps."""


# What a running job is doing (its `phase`): reading the upload, the first network pass
# (the predictor; with kernel=auto the blur kernel's estimate before it), the refining
# steps, then writing. The page shows it from the first moment, fast jobs included.
PHASES = ("queued", "reading", "first pass", "refining", "writing")


@dataclass
class Job:
    id: str
    name: str  # the upload's (sanitised) file name: the seed key, as on the command line
    folder: Path
    settings: Settings
    seed: int
    std: bool = False
    region: Region | None = None
    status: str = "queued"
    progress: float = 0.0
    step: int = 0
    steps: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    std_map: Path | None = None
    size: tuple[int, int] | None = None
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False
    kernel: bool = False  # the kernel step asked for (kernel=auto): estimate the blur kernel first
    kernel_path: str | None = None  # then the path taken, "kernel" or "blind", and why
    kernel_reason: str | None = None
    kernel_image: Path | None = None  # the kernel found, as the CLI's --save-kernel writes it
    phase: str = "queued"  # one of PHASES while queued or running, then the status
    pixels: int = 0  # the pixels restored (the region's), known once the input is read
    # When the first pass began and the steps came (monotonic s), for the time left.
    t_read: float | None = None
    t_first_step: float | None = None
    t_step: float | None = None
    first_step: int = 0
    samples_per_step: float = 1.0  # samples one on_step covers (several passes share the count)
    rates: dict = field(default_factory=dict)  # earlier jobs' seconds per pixel: "pass", "step" (per sample)

    @property
    def input_path(self) -> Path:
        return self.folder / "in" / self.name

    def estimate(self, now: float) -> tuple[float, float | None]:
        """(fraction done, seconds left or None) of a running job. The fraction counts the
        first network pass as one step; the time left comes from this job's own steps once
        two have come, and before that from earlier jobs on this server (per pixel)."""
        units = 1 + self.steps
        per_step = None
        if self.t_first_step is not None and self.step > self.first_step:
            per_step = (self.t_step - self.t_first_step) / (self.step - self.first_step)
        elif "step" in self.rates and self.pixels:
            per_step = self.rates["step"] * self.pixels * self.samples_per_step
        if self.phase == "first pass" and self.t_read is not None:
            first = self.rates.get("pass", 0.0) * self.pixels
            spent = now - self.t_read
            fraction = min(0.95, spent / first) / units if first > 0 else 0.0
            if first <= 0 or (self.steps and per_step is None):
                return fraction, None
            return fraction, max(0.0, first - spent) + self.steps * (per_step or 0.0)
        if self.phase in ("refining", "writing") and self.t_step is not None:
            left = None if per_step is None else max(0.0, per_step * (self.steps - self.step) - (now - self.t_step))
            return min(0.999, (1 + self.step) / units), left
        return 0.0, None

    def to_dict(self) -> dict:
        now = time.monotonic()
        elapsed = (self.finished or now) - self.started if self.started else 0.0
        progress, eta = self.estimate(now) if self.status == "running" else (self.progress, None)
        s = self.settings
        kernel = None
        if self.kernel:
            kernel = {"path": self.kernel_path, "reason": self.kernel_reason,
                      "image": self.kernel_image.name if self.kernel_image else None}
        return {
            "id": self.id, "name": self.name, "status": self.status,
            "phase": self.phase if self.status in ("queued", "running") else self.status, "progress": round(progress, 4),
            "step": self.step, "steps": self.steps, "error": self.error, "notes": self.notes,
            "seconds": round(elapsed, 3), "eta_seconds": None if eta is None else round(eta, 1),
            "seed": self.seed, "size": list(self.size) if self.size else None,
            "settings": {"preset": s.preset, "steps": s.steps, "samples": s.samples, "average": s.average,
                         "noise_ceiling": s.noise_ceiling, "sampler": s.sampler, "flips": s.flips,
                         "kernel": "auto" if self.kernel else "none"},
            "results": [p.name for p in self.outputs], "std": self.std_map.name if self.std_map else None,
            "kernel": kernel,
        }


class JobQueue:
    """Jobs run on `workers` threads (one by default) that sleep while the queue is empty
    (the server costs nothing next to a training run until someone submits a photo); they
    share the one model, and each sizes its tiles from its share of the memory. Finished
    jobs are kept for `keep_seconds` and at most `keep_jobs` of them; older ones and their
    files are removed."""

    def __init__(self, deblurrer: "Deblurrer", root: Path, max_pixels: int, keep_jobs: int = 64,
                 keep_seconds: float = 3600.0, max_queued: int = 32, workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.deblurrer = deblurrer
        self.root = Path(root)
        self.max_pixels = max_pixels
        self.keep_jobs = keep_jobs
        self.keep_seconds = keep_seconds
        self.max_queued = max_queued
        self.jobs: dict[str, Job] = {}
        self.rates: dict[str, float] = {}  # the last finished job's seconds per pixel (Job.rates)
        self._reserved = 0  # uploads under way that were promised a place in the queue
        self._lock = threading.Lock()
        self._todo: queue.Queue[str | None] = queue.Queue()
        self.workers = workers
        deblurrer.restorer.concurrent_jobs = workers
        self._threads = [threading.Thread(target=self._work, name=f"deblur-serve-worker-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    # -- the client's side ---------------------------------------------------------------

    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its private folder (the upload is written into `in/`)."""
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        (folder / "in").mkdir(parents=True)
        return job_id, folder

    def _pending(self) -> int:
        return sum(1 for j in self.jobs.values() if j.status in ("queued", "running"))

    def reserve(self) -> bool:
        """A place in the queue for an upload about to be read (False: the queue is full).
        Counted with the queued jobs, so uploads in parallel cannot overfill it; the place
        is taken by submit(reserved=True) or given back by release()."""
        with self._lock:
            if self._pending() + self._reserved >= self.max_queued:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._reserved = max(0, self._reserved - 1)

    def submit(self, job: Job, reserved: bool = False) -> Job:
        self.reap()
        with self._lock:
            self.jobs[job.id] = job
            if reserved:
                self._reserved = max(0, self._reserved - 1)
        self._todo.put(job.id)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self.jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """A queued job is dropped at once; a running one stops at its next step (a
        predictor-only job has none and finishes, then is dropped); a finished one is
        deleted with its files."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            job.cancel_requested = True
            if job.status == "queued":
                job.status, job.finished = "cancelled", time.monotonic()
            elif job.status in ("done", "failed", "cancelled"):
                del self.jobs[job_id]
                job.status = "deleted"
        if job.status in ("cancelled", "deleted"):
            self._drop_files(job)
        return job

    def close(self) -> None:
        for _ in self._threads:
            self._todo.put(None)  # one stop sign per worker
        deadline = time.monotonic() + 30
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    # -- housekeeping --------------------------------------------------------------------

    def reap(self) -> None:
        """Remove finished jobs past their time or beyond the count, oldest first."""
        now = time.monotonic()
        with self._lock:
            finished = sorted((j for j in self.jobs.values() if j.finished is not None), key=lambda j: j.finished)
            old = [j for j in finished if now - j.finished > self.keep_seconds]
            old += [j for j in finished[: max(0, len(finished) - self.keep_jobs)] if j not in old]
            for j in old:
                del self.jobs[j.id]
        for j in old:
            self._drop_files(j)

    def discard(self, folder: Path) -> None:
        """Remove a job folder (only ever one under this queue's root)."""
        if folder.parent == self.root:
            shutil.rmtree(folder, ignore_errors=True)

    def _drop_files(self, job: Job) -> None:
        self.discard(job.folder)

    # -- the worker ----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                job_id = self._todo.get(timeout=60.0)
            except queue.Empty:
                self.reap()
                continue
            if job_id is None:
                return
            with self._lock:  # two workers never take the same job
                job = self.jobs.get(job_id)
                if job is None or job.status != "queued":
                    continue
                job.status, job.started, job.phase = "running", time.monotonic(), "reading"
                job.rates = dict(self.rates)
            try:
                self._run(job)
            except JobCancelled:
                job.status = "cancelled"
            except Exception as e:  # noqa: BLE001 -- a job's failure must never stop the worker
                job.status, job.error = "failed", f"{job.name}: {type(e).__name__}: {e}"
            job.finished = time.monotonic()
            if job.status == "cancelled" or job.cancel_requested:
                job.status = "cancelled"
                self._drop_files(job)

    def _run(self, job: Job) -> None:
        from ..io import read_image
        from ..pipeline import RunOptions, files_per_image, output_tag, process_image

        s = job.settings
        # kernel=auto as `deblur --kernel auto`: estimate the blur kernel, deconvolve where it explains the photo.
        kernel = None
        if job.kernel:
            from ..kernel_path import KernelChoice

            kernel = KernelChoice("auto")
        opts = RunOptions(settings=s, std=job.std, seed=job.seed, max_pixels=self.max_pixels, region=job.region,
                          overwrite=True, kernel=kernel)
        item = InputItem(job.input_path)
        plan = plan_outputs(item, job.folder / "out", True, "png", files_per_image(s), job.std and s.steps > 0,
                            tag=output_tag(s, job.region is not None), with_kernel=job.kernel)
        job.steps = s.steps

        def on_step(n: int, total: int) -> None:
            if job.cancel_requested:
                raise JobCancelled()
            now = time.monotonic()
            if job.t_first_step is None:
                job.t_first_step, job.first_step = now, n
                job.samples_per_step = (s.samples * s.steps / total) if total else 1.0
            job.step, job.steps, job.t_step = n, total, now
            job.phase = "writing" if n >= total else "refining"
            job.progress = min(0.999, (1 + n) / (1 + total))

        loaded = []  # the decoded input, kept for the page's "before" picture (read once)

        def load():
            loaded.append(read_image(job.input_path, self.max_pixels))
            w, h = loaded[0].size if job.region is None else job.region.box(*loaded[0].size)[2:]
            job.pixels = w * h
            job.phase, job.t_read = "first pass", time.monotonic()
            return loaded[0]

        result = process_image(self.deblurrer, item, plan, opts, on_step=on_step, load=load)
        job.size = result.size
        job.notes = [n.replace(str(job.folder), "") for n in (result.notes or [])]
        if job.kernel:
            job.kernel_path, job.kernel_reason = result.path, result.path_reason
            job.kernel_image = plan.kernel if plan.kernel is not None and plan.kernel.is_file() else None
        if result.status != "done":
            job.status = "failed"
            job.error = (result.error or "failed").replace(str(job.folder / "in") + "/", "")
            return
        job.outputs = list(plan.main)
        job.std_map = plan.std
        _write_before(job, loaded[0])
        self._learn(job, time.monotonic())
        job.progress = 1.0
        job.status = "done"

    def _learn(self, job: Job, end: float) -> None:
        """Seconds per pixel of the first pass and of a step (per sample), from a finished
        job, for the next jobs' time left (a kernel estimate would count as first pass: not
        taken)."""
        if not job.pixels or job.t_read is None or job.kernel:
            return
        per_step = None
        if job.t_first_step is not None and job.step > job.first_step:
            per_step = (job.t_step - job.t_first_step) / (job.step - job.first_step)
            self.rates["step"] = per_step / (job.pixels * job.samples_per_step)
        first = (job.t_first_step if job.t_first_step is not None else end) - job.t_read - (per_step or 0.0)
        self.rates["pass"] = max(0.0, first) / job.pixels


def _write_before(job: Job, image) -> None:
    """The input as the page shows it beside the result: 8-bit PNG, upright, cut to the
    job's region (browsers cannot show TIFF, or 16-bit without loss)."""
    from ..io import crop_image, encode_image, write_atomic

    if job.region is not None:
        image, _ = crop_image(image, job.region)
    write_atomic(job.folder / "before.png", encode_image(image.rgb, "PNG"))
