"""What an interrupted `punktraits predict` keeps: answers written, exit code, processes left.

    python benchmarks/interrupt.py [--n 600] [--filter box] [--size 36] [--format jpeg70]
        [--workers 1,2] [--after 25] [--pythonpath DIR]

Writes N punks rendered as `renders.py` renders them (filter, size, format, on the site blue)
into a temporary folder, runs `python -m punktraits predict FOLDER --format jsonl --workers W`
for each W, sends it SIGTERM after `--after` seconds, and prints a Markdown table: the answers
on its output (each line parsed as JSON), its exit code and last line on stderr, how long it
took to end, and how many of its child processes were still running 5 s later (Linux /proc).
--pythonpath runs another checkout's code (its `src`), to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from punktraits import data as D


def children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (also `tests/test_predict.py`'s)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def running(pids: set[int]) -> set[int]:
    """Those of `pids` still running (not ended, not a zombie)."""
    out = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--filter", default="box")
    ap.add_argument("--size", type=int, default=36)
    ap.add_argument("--format", default="jpeg70")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--after", type=float, default=25.0, help="seconds before SIGTERM")
    ap.add_argument("--pythonpath", default=None, help="another checkout's src, to compare")
    args = ap.parse_args()
    from renders import render  # (here: the helpers above load alone, as the tests do)

    punks = D.load(args.data_dir)
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    suffix = ".jpg" if args.format.startswith("jpeg") else "." + args.format.rstrip("0123456789")
    print(f"{args.n} punks, {args.filter} {args.size} px {args.format}; SIGTERM after "
          f"{args.after:g} s\n")  # fmt: skip
    print("| --workers | answers written | exit code | last stderr line | ended in | "
          "processes left 5 s later |")  # fmt: skip
    print("|--:|--:|--:|---|--:|--:|")
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.n):
            data = render(punks.images[k], args.filter, args.size, args.format, "blue")
            Path(tmp, f"{k:05d}{suffix}").write_bytes(data)
        for workers in map(int, args.workers.split(",")):
            proc = subprocess.Popen(
                [sys.executable, "-m", "punktraits", "predict", tmp, "--format", "jsonl",
                 "--workers", str(workers)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            )  # fmt: skip
            got: dict[str, list[str]] = {"out": [], "err": []}
            readers = [threading.Thread(target=got[k].extend, args=(f,), daemon=True)
                       for f, k in ((proc.stdout, "out"), (proc.stderr, "err"))]  # fmt: skip
            for r in readers:  # (read as it comes: a full pipe would stop the run writing)
                r.start()
            kids: set[int] = set()
            deadline = time.monotonic() + args.after
            while time.monotonic() < deadline and proc.poll() is None:
                kids |= children(proc.pid)
                time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            for r in readers:  # (children left running hold the output open: a minute at most)
                r.join(60 - (time.monotonic() - sent))
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            ended = f"{time.monotonic() - sent:.1f} s" if not readers[0].is_alive() else "> 60 s"
            out, err = "".join(got["out"]), "".join(got["err"])
            time.sleep(5)
            left = running(kids | {proc.pid})
            answers = sum(1 for line in out.splitlines() if json.loads(line).get("file"))
            last = (err.strip().splitlines() or [""])[-1].split("\r")[-1][:60]
            print(f"| {workers} | {answers} | {proc.returncode} | {last} | {ended} | "
                  f"{len(left)} |", flush=True)  # fmt: skip
            for p in left:  # (nothing is left running by this script)
                os.kill(p, signal.SIGKILL)


if __name__ == "__main__":
    main()
