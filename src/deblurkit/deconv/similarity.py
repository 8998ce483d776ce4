"""How close an estimated kernel is to the true one, as the kernel-estimation literature
measures it: the maximum over shifts of the normalised cross-correlation (an estimate is
defined up to a shift, and both supports may differ in size). 1 for the same kernel
anywhere in its window; a delta against a long streak scores about 1/sqrt(length)."""

from __future__ import annotations

import numpy as np
from numpy.fft import irfft2, rfft2


def kernel_similarity(estimate: np.ndarray, truth: np.ndarray) -> float:
    a, b = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError("kernels must be 2-D")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    # Full cross-correlation (every overlap of the two supports) through zero-padded FFTs.
    shape = (a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1)
    corr = irfft2(rfft2(a, shape) * np.conj(rfft2(b, shape)), s=shape)
    return float(np.clip(corr.max() / (na * nb), 0.0, 1.0))
