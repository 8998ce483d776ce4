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


def training_hours(records: list[dict], max_gap_s: float = 600.0) -> list[float]:
    """Cumulative training hours at each log record, not counting pauses between resumed
    segments (a gap longer than `max_gap_s` between two records is a pause)."""
    hours, total, last = [], 0.0, None
    for r in records:
        t = float(r["time"])
        if last is not None and 0 < t - last <= max_gap_s:
            total += t - last
        last = t
        hours.append(total / 3600.0)
    return hours


def curve_plot(panels: list[tuple[str, dict[str, list[tuple[float, float]]]]], path: Path, x_label: str, title: str) -> None:
    """Line plots stacked vertically: each panel is (y label, {series name: [(x, y), ...]})."""
    W, ph, m = 900, 300, 70
    H = ph * len(panels) + 40
    img = np.full((H, W, 3), 255, np.uint8)
    colours = [(200, 90, 40), (40, 150, 40), (40, 40, 200), (150, 40, 150), (0, 150, 200)]
    cv2.putText(img, title, (m, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    xs_all = [x for _, series in panels for pts in series.values() for x, _ in pts]
    x0, x1 = (min(xs_all), max(xs_all)) if xs_all else (0.0, 1.0)
    x1 = x1 if x1 > x0 else x0 + 1.0
    for k, (label, series) in enumerate(panels):
        top, bottom = 40 + k * ph + 10, 40 + (k + 1) * ph - 40
        ys = [y for pts in series.values() for _, y in pts if np.isfinite(y)]
        if not ys:
            continue
        y0, y1 = min(ys), max(ys)
        pad = 0.08 * ((y1 - y0) or 1.0)
        y0, y1 = y0 - pad, y1 + pad
        to_px = lambda x, y: (int(m + (x - x0) / (x1 - x0) * (W - 2 * m)), int(bottom - (y - y0) / (y1 - y0) * (bottom - top)))  # noqa: E731
        cv2.rectangle(img, (m, top), (W - m, bottom), (0, 0, 0), 1)
        for i in range(5):
            fy = y0 + (y1 - y0) * i / 4
            cv2.putText(img, f"{fy:.2f}", (m - 55, to_px(x0, fy)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
            fx = x0 + (x1 - x0) * i / 4
            cv2.putText(img, f"{fx:.2f}", (to_px(fx, y0)[0] - 14, bottom + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, label, (m + 5, top + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for j, (name, pts) in enumerate(series.items()):
            c = colours[j % len(colours)]
            px = [to_px(x, y) for x, y in pts if np.isfinite(y)]
            for a, b in zip(px, px[1:]):
                cv2.line(img, a, b, c, 2, cv2.LINE_AA)
            for p in px:
                cv2.circle(img, p, 3, c, -1, cv2.LINE_AA)
            cv2.putText(img, name, (W - m - 170, top + 16 + 16 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.45, c, 1, cv2.LINE_AA)
    cv2.putText(img, x_label, (W // 2 - 80, H - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    write_atomic(path, encode_image(img.astype(np.float32) / 255.0, "PNG"))
