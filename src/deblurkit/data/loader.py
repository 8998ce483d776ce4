"""Training batches by step number, inline or from worker processes.

Each step's batch comes from a generator seeded with (seed, step, rank), so a batch
depends only on its step: workers take steps round-robin, the DataLoader hands their
results back in step order, and a run with or without workers (or resumed anywhere)
sees exactly the same data. Workers keep a GPU fed: blur synthesis is CPU work.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info


def step_batch(data, seed: int, step: int, rank: int, batch: int) -> tuple:
    """(sharp, blurry, noise seed) of one training step, and the crops' kernels where the
    data gives them (the kernel path's refiner: (sharp, blurry, noise seed, kernels))."""
    rng = np.random.default_rng([seed, step, rank])
    x, y, *kernels = data.batch(rng, batch)
    return (torch.from_numpy(x), torch.from_numpy(y), int(rng.integers(2**62)), *map(torch.from_numpy, kernels))


class StepBatches(IterableDataset):
    def __init__(self, data, seed: int, rank: int, batch: int, start: int, end: int):
        self.data, self.seed, self.rank, self.batch, self.start, self.end = data, seed, rank, batch, start, end

    def __iter__(self) -> Iterator[tuple]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for step in range(self.start + worker, self.end, workers):
            yield (step, *step_batch(self.data, self.seed, step, self.rank, self.batch))


def step_batches(data, seed: int, rank: int, batch: int, start: int, end: int, workers: int = 0, pin: bool = False):
    """Iterate (step, sharp, blurry, noise seed[, kernels]) for steps start..end-1 in order
    (step_batch's tuple after the step)."""
    dataset = StepBatches(data, seed, rank, batch, start, end)
    if workers <= 0:
        return iter(dataset)
    return iter(DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=pin, prefetch_factor=4,
                           persistent_workers=False))
