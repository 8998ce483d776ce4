"""The steps x noise-ceiling grid of `deblur bench --grid` (no heavy imports: the CLI
checks the flag before any work)."""

from __future__ import annotations

# MSGD's Table 12 (appendix C.2): ancestral step counts x the last beta ("maximum noise
# variance") searched for its perception-distortion plots.
TABLE12_STEPS = (20, 30, 50, 100, 200, 500, 1000)
TABLE12_CEILINGS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def parse_grid(text: str) -> tuple[list[int], list[float]]:
    """`STEPS:CEILINGS`, e.g. "20,50,200:0.02,0.1,0.5", or "table12" (MSGD's grid)."""
    if text.strip().lower() == "table12":
        return list(TABLE12_STEPS), list(TABLE12_CEILINGS)
    try:
        a, b = text.split(":")
        steps = [int(t) for t in a.split(",") if t.strip()]
        ceilings = [float(t) for t in b.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--grid {text!r}: expected STEPS:CEILINGS, e.g. 20,50,200:0.02,0.1,0.5, or table12") from None
    if not steps or not ceilings or any(t < 1 or t > 10000 for t in steps) or any(not 0 < c < 1 for c in ceilings):
        raise ValueError(f"--grid {text!r}: steps must be 1..10000 and ceilings in (0, 1)")
    return steps, ceilings
