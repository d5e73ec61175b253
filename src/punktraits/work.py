"""Work counted, not timed. A lossy WebP's optional checks (re-encoding answers, searching
backgrounds) stop after a budget; counted in the operations done, each at its cost measured on
one core, rather than in CPU time, the same file gets the same answer on a loaded machine, a
slow one or a fast one (`normalize._Clock`). Counted per thread: each request or worker counts
its own."""

from __future__ import annotations

import threading

# Seconds each operation takes on one core of the machine the soft limits were tuned on
# (2026-11-26..28). Fitted by least squares to the CPU time of 115 WebPs read alone on
# 2026-12-07's machine (36-152 px; nearest, box, bilinear, bicubic, lanczos, area; q70-80):
# 0.85 ms an encoding and its decoding + 0.14 us a pixel, 4.4 ms a round of the descent's model,
# 0.73 ms a part of a drawing drawn exactly, a drawing at full size no more than its parts
# (within 10% of each image's time at the median, 22% at the 90th percentile); divided by
# REFERENCE_SPEEDUP, as that machine ran the same code about twice as fast (the folder
# benchmark 1,270-1,291 vs 559-593 images/s, `notpunks.py` 0.43 vs 0.80 s an image, CI 888 vs
# 1,671 s), so that a soft second buys the work it bought when the budgets were set.
REFERENCE_SPEEDUP = 2.0
ENCODE = 0.85e-3 / REFERENCE_SPEEDUP  # a WebP encoding and its decoding...
ENCODE_PIXEL = 0.14e-6 / REFERENCE_SPEEDUP  # ... and this much more a pixel
EXACT = 0.73e-3 / REFERENCE_SPEEDUP  # a drawing, or part of one, drawn exactly
GAINS = 4.4e-3 / REFERENCE_SPEEDUP  # a round of the descent's second-order model

_counted = threading.local()


def charge(seconds: float) -> None:
    """Count work of this thread, in seconds of the reference core."""
    _counted.done = getattr(_counted, "done", 0.0) + seconds


def counted_work() -> float:
    """The work this thread has counted so far (seconds of the reference core)."""
    return getattr(_counted, "done", 0.0)
