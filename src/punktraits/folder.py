"""Folders of images: the files a path names, and `predict` over them in worker processes.

    files = expand_paths(["punks/", "one.png"])
    for found in iter_find_parallel(None, files, workers=2):   # answers in the files' order
        ...

Each worker process loads its own model (`predict.load_model`) and reads chunks of files; the
process that asks for the answers imports neither torch nor the model: it gets `Prediction`s
(answer.py, plain data) and the run's trait names from its config.json (`run_traits`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .answer import Prediction
from .errors import PunktraitsError
from .files import DEFAULT_MODEL, read_json

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; folders searched recursively for image files, in sorted order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            out.append(p)
    return out


def run_traits(run: str | os.PathLike | None) -> list[str]:
    """The trait names of a run folder's outputs, in order, from its config.json alone (for a
    run the workers loaded: they checked the rest)."""
    path = (DEFAULT_MODEL if run is None else Path(run)) / "config.json"
    return list(read_json(path)["traits"])


_WORKER = None  # the Predictor of a worker process (`iter_find_parallel`)
_WORKER_ERROR: str | None = None  # why it has none


def exit_with_parent(stop=None, period: float = 0.5) -> None:
    """In a worker process: end it (`os._exit`) when the process that started it is gone, or
    when `stop` (a multiprocessing Event) is set, checked every `period` seconds by a daemon
    thread. A pool's workers otherwise go on through the chunks already handed to them when
    their parent is killed (SIGTERM, SIGKILL): minutes of two cores, answered to no one."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent and not (stop.wait(period) if stop else time.sleep(period)):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _start_worker(run, threads: int, stop=None) -> None:
    global _WORKER, _WORKER_ERROR
    import torch

    from .predict import load_model

    exit_with_parent(stop)
    torch.set_num_threads(threads)
    try:
        _WORKER = load_model(run)
    except PunktraitsError as e:  # said by the main process, from the first chunk's answer
        _WORKER_ERROR = str(e)


def _find_in_worker(files: list[Path], batch_size: int) -> list[list[Prediction]]:
    if _WORKER is None:
        raise PunktraitsError(_WORKER_ERROR or "the worker has no model")
    out = list(_WORKER.iter_find(files, batch_size))
    for found in out:
        for p in found:
            p.drawn = None  # (the drawing's arrays need not cross back)
    return out


LOSSY_SUFFIXES = {".jpg", ".jpeg", ".webp"}
LOSSY_CHUNK = 16  # lossy files (by their suffix) after which a chunk ends: each takes 0.05-1 s,
# so a chunk of them still comes back in seconds (as `predict.STREAM_FITS` in one process)


def _parts(files: list[Path], chunk: int) -> Iterator[list[Path]]:
    """The files in order, in chunks of `chunk`, or fewer where LOSSY_CHUNK are lossy."""
    part: list[Path] = []
    lossy = 0
    for f in files:
        part.append(f)
        lossy += Path(f).suffix.lower() in LOSSY_SUFFIXES
        if len(part) >= chunk or lossy >= LOSSY_CHUNK:
            yield part
            part, lossy = [], 0
    if part:
        yield part


def iter_find_parallel(run, files: list[Path], workers: int, batch_size: int = 256,
                       threads: int = 1, chunk: int = 128) -> _Parallel:  # fmt: skip
    """`Predictor.iter_find` over files in `workers` processes, each with its own model (loaded
    once, `threads` torch threads), in chunks of `chunk` files (`_parts`: fewer when lossy);
    answers come back in the files' order as soon as their chunk is done. Without the drawings
    (`Prediction.drawn` is None).
    The processes start now (loading a model takes them a second or two), not when the
    answers are first asked for; a model that does not load raises its PunktraitsError at the
    first answer. Answers left unasked for (an interruption, an error, a consumer that stops
    iterating) stop the workers at once, not after the chunks they were handed; so does the
    end of this process, however it ends."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")  # (a forked torch can hang on its threads)
    stop = ctx.Event()
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker,
                               initargs=(run, threads, stop))  # fmt: skip
    futures = [pool.submit(_find_in_worker, part, batch_size) for part in _parts(files, chunk)]

    return _Parallel(pool, futures, stop)


class _Parallel:
    """The answers of `iter_find_parallel`, in order; `close` stops the processes (also when
    the answers were never asked for)."""

    def __init__(self, pool, futures, stop):
        self.pool, self.futures, self.stop = pool, futures, stop

    def __iter__(self) -> Iterator[list[Prediction]]:
        from concurrent.futures.process import BrokenProcessPool

        try:
            for f in self.futures:
                yield from f.result()
        except BrokenProcessPool:
            raise PunktraitsError(
                "a worker process stopped before it answered (killed, or out of memory?); "
                "the answers before it were written: run again, with fewer --workers"
            ) from None
        finally:  # done, failed, interrupted or not asked for the rest: nothing left running
            self.close()

    def close(self) -> None:
        """Stops the processes: at once when answers are left (cancelled), else when idle."""
        if not all(f.done() for f in self.futures):
            self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
