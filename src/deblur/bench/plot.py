"""The perception-distortion plane (DvSR Fig. 1 style) as a PNG, drawn with OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..io import encode_image, write_atomic


def pd_plot(points: list[tuple[str, float, float]], path: Path, x_label: str = "PSNR (dB), higher is less distortion",
            y_label: str = "NIQE, lower is more natural", title: str = "perception-distortion") -> None:
    """Scatter of (label, x, y) with each point labelled; y axis increases downwards' opposite."""
    pts = [(lbl, x, y) for lbl, x, y in points if x is not None and y is not None and np.isfinite(x) and np.isfinite(y)]
    if not pts:
        raise ValueError("no points with both metrics to plot")
    W, H, m = 900, 640, 80
    img = np.full((H, W, 3), 255, np.uint8)
    xs, ys = np.array([p[1] for p in pts]), np.array([p[2] for p in pts])
    pad = lambda a: (a.min() - 0.08 * (np.ptp(a) or 1), a.max() + 0.08 * (np.ptp(a) or 1))  # noqa: E731
    (x0, x1), (y0, y1) = pad(xs), pad(ys)
    to_px = lambda x, y: (int(m + (x - x0) / (x1 - x0) * (W - 2 * m)), int(m + (y - y0) / (y1 - y0) * (H - 2 * m)))  # noqa: E731
    cv2.rectangle(img, (m, m), (W - m, H - m), (0, 0, 0), 1)
    for k in range(5):
        fx, fy = x0 + (x1 - x0) * k / 4, y0 + (y1 - y0) * k / 4
        px, _ = to_px(fx, y0)
        _, py = to_px(x0, fy)
        cv2.putText(img, f"{fx:.2f}", (px - 18, H - m + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"{fy:.2f}", (m - 45, py + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, x_label, (W // 2 - 150, H - 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, y_label + " (top: better)", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (W // 2 - 100, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for lbl, x, y in pts:
        px, py = to_px(x, y)
        cv2.circle(img, (px, py), 5, (40, 90, 200), -1, cv2.LINE_AA)
        cv2.putText(img, lbl, (px + 7, py - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1, cv2.LINE_AA)
    write_atomic(path, encode_image(img.astype(np.float32) / 255.0, "PNG"))
