"""`punktraits predict` over a folder of 10,000 PNG files: images/s and peak memory.

    python benchmarks/predict_folder.py [--scale 8] [--batch-size 256] [--threads N] [--workers N]

Writes the 10,000 crops upscaled x`scale` onto the official blue as PNG files into a temporary
folder, then runs the CLI on the folder in a child process (JSON to /dev/null) and reports its
wall time, images/s and peak resident memory (from the child's rusage: the largest single
process, so with --workers the total is about workers + 1 times it).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from punktraits import data as D

BLUE = (0x63, 0x85, 0x96, 255)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--scale", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument(
        "--threads", type=int, default=None, help="predict --threads (default: torch's)"
    )
    ap.add_argument(
        "--workers", type=int, default=1, help="predict --workers (processes; default 1)"
    )
    args = ap.parse_args()
    punks = D.load(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "punks"
        folder.mkdir()
        side = 24 * args.scale
        for i in range(len(punks)):
            im = Image.fromarray(punks.images[i], "RGBA").resize((side, side), Image.NEAREST)
            canvas = Image.new("RGBA", (side, side), BLUE)
            canvas.alpha_composite(im)
            canvas.convert("RGB").save(folder / f"{i}.png")
        cmd = [sys.executable, "-m", "punktraits", "predict", str(folder), "--format", "json",
               "--batch-size", str(args.batch_size)]  # fmt: skip
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.workers > 1:
            cmd += ["--workers", str(args.workers)]
        t = time.perf_counter()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"{len(punks):,} PNG files of {side}x{side}, batch {args.batch_size}: exit {done.returncode}, "
        f"{wall:.1f} s, {len(punks) / wall:,.0f} images/s, peak RSS {peak:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
