"""A batch of inputs through the pipeline: what `deblur PATHS...` does between parsing its
flags and printing its summary, for any front end.

Photos overlap their I/O with the network (the next photo is decoded and the previous
result encoded and written in threads while the current one is restored); videos run
frame by frame (video.py). A front end hears about each input through `BatchEvents` and
gets every result back, finished: an output being written when Ctrl-C arrives is
completed, never left half-done.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .io import InputItem, OutputPlan, is_video, read_image
from .pipeline import ImageResult, RunOptions, finish, process_image

if TYPE_CHECKING:  # pragma: no cover
    from .api import Deblurrer


@dataclass
class BatchEvents:
    """Callbacks, all optional: an input begins; a step of its chain; a frame of a clip
    (total None when unknown); its final result (outputs written, or why not)."""

    on_start: Callable[[InputItem], None] | None = None
    on_step: Callable[[InputItem, int, int], None] | None = None
    on_frame: Callable[[InputItem, int, "int | None"], None] | None = None
    on_result: Callable[[InputItem, "OutputPlan | None", ImageResult], None] | None = None


@dataclass
class VideoOptions:
    temporal_noise: str = "fixed"
    allow_truncated: bool = False
    seed_given: bool = True


@dataclass
class BatchOutcome:
    results: list[ImageResult]
    interrupted: bool
    seconds: float


def run_batch(deblurrer: "Deblurrer", items: list[InputItem], plans: dict[Path, OutputPlan], opts: RunOptions,
              events: BatchEvents | None = None, video: VideoOptions | None = None) -> BatchOutcome:
    """Restore every item with its plan; an item with an `error` (an unlistable folder)
    or whose outputs would overwrite an input fails on its own and the rest go on."""
    ev = events or BatchEvents()
    video = video or VideoOptions()
    results: list[ImageResult] = []
    inputs = {i.path.resolve() for i in items if i.path.exists()}

    def tell(item: InputItem, plan: OutputPlan | None, result: ImageResult) -> None:
        finish(result)
        if ev.on_result is not None:
            ev.on_result(item, plan, result)

    def steps_of(item: InputItem):
        return None if ev.on_step is None else (lambda n, total: ev.on_step(item, n, total))

    def needs_work(item: InputItem) -> bool:
        return item.error is None and (opts.overwrite or not all(p.exists() for p in plans[item.path].all))

    reader = ThreadPoolExecutor(1, thread_name_prefix="deblur-read")
    writer = ThreadPoolExecutor(1, thread_name_prefix="deblur-write")
    prefetched: dict[Path, Future] = {}

    def read_ahead(after: int) -> None:
        nxt = next((it for it in items[after + 1:] if needs_work(it)), None)
        if nxt is not None and not is_video(nxt.path) and nxt.path not in prefetched:
            prefetched[nxt.path] = reader.submit(read_image, nxt.path, opts.max_pixels)

    pending = None  # (item, plan, result) of a photo whose outputs are still being written
    interrupted = False
    t0 = time.perf_counter()
    try:
        for index, item in enumerate(items):
            if item.error is not None:
                results.append(ImageResult(str(item.path), "failed", error=item.error))
                tell(item, None, results[-1])
                continue
            plan = plans[item.path]
            clash = [o for o in plan.all if o.resolve() in inputs]
            if clash:
                results.append(ImageResult(str(item.path), "failed", error=f"{item.path}: output {clash[0]} would overwrite an input"))
                tell(item, plan, results[-1])
                continue
            if ev.on_start is not None:
                ev.on_start(item)
            if is_video(item.path):
                if pending is not None:
                    tell(*pending)
                    pending = None
                results.append(_video(deblurrer, item, plan, opts, video, ev, steps_of(item)))
                tell(item, plan, results[-1])
                continue
            ahead = prefetched.pop(item.path, None)
            read_ahead(index)
            result = process_image(deblurrer, item, plan, opts, on_step=steps_of(item),
                                   load=ahead.result if ahead is not None else None, defer=writer.submit)
            results.append(result)
            if pending is not None:
                tell(*pending)
            pending = (item, plan, result)
        if pending is not None:
            tell(*pending)
            pending = None
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for future in prefetched.values():
            future.cancel()
        reader.shutdown(wait=True, cancel_futures=True)
        if pending is not None:
            finish(pending[2])  # an output already being written is finished, never left half-done
        writer.shutdown(wait=True)
    return BatchOutcome(results, interrupted, time.perf_counter() - t0)


def _video(deblurrer, item: InputItem, plan: OutputPlan, opts: RunOptions, video: VideoOptions, ev: BatchEvents, on_step):
    from .video import process_video

    on_frame = None if ev.on_frame is None else (lambda done, total: ev.on_frame(item, done, total))
    return process_video(deblurrer, item.path, plan.main[0], opts.settings, opts.seed, video.temporal_noise,
                         opts.overwrite, on_frame=on_frame, on_step=on_step, allow_truncated=video.allow_truncated,
                         max_pixels=opts.max_pixels, seed_given=video.seed_given, kernel=opts.kernel)
