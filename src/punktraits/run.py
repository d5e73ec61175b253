"""Run folders: self-describing, resumable, evaluable without the training process.

    run/
      config.json        recipe, model arguments, trait names in output order, data sha256,
                         split seed, package version, device, threads, training settings
      split.json         {"train": [ids], "test": [ids]}
      palette.json       the collection's colours and pixel counts (for normalising images)
      ...                the recipe's weights and history (recipes/ours.py, recipes/paper.py)
      metrics.json, metrics.csv   test-split metrics (see metrics.py)

    run = Run.create(punks, TrainConfig(recipe="ours"), "runs/x")   # train, evaluate
    run = Run.open("runs/x")          # or Run.open() for the model shipped with the package
    run.probabilities(images), run.decide(prob), run.evaluate(punks)

Every file is written to a temporary name and renamed, so an interrupted run leaves no half file.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from . import recipes
from .data import HEADS, Punks, split
from .errors import DataError, RunError
from .files import DEFAULT_MODEL, atomic_write, read_json, write_json
from .metrics import evaluate, to_csv
from .normalize import collection_palette
from .recipes import Recipe, Split, TrainConfig
from .schema import check_config, check_history, read_config, read_metrics, read_palette, read_split
from .version import __version__

# Settings that may differ when a run is resumed (they do not change the result).
RESUMABLE = {"device", "threads", "train_config", "group"}


@dataclass
class TestScores:
    """A model's predictions on its run's test split, beside the labels; columns in the order of
    config['traits']."""

    test: np.ndarray  # (N,) test punk ids
    truth: np.ndarray  # (N, T) official labels
    hidden: np.ndarray | None  # (N, T) bool, None without hidden.csv
    prob: np.ndarray  # (N, T)
    pred: np.ndarray  # (N, T) 0/1
    metrics: dict  # metrics.evaluate of pred against truth
    heads: np.ndarray | None = None  # (N,) predicted head index (None: no head outputs)
    head_truth: np.ndarray | None = None  # (N,) the punks' heads


class Run:
    """A run folder: its config, recipe, split and palette; the model is loaded when first used."""

    def __init__(self, path: Path, config: dict):
        self.path = path
        self.config = check_config(config, path / "config.json")
        try:
            self.recipe: Recipe = recipes.get(config["recipe"])
        except RunError as e:
            raise RunError(f"{path / 'config.json'}: {e}") from None
        self.traits: list[str] = list(config["traits"])
        self.heads: list[str] = list(config.get("heads") or [])  # outputs for the head, if any

    # -- opening and creating --------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> Run:
        """A finished run folder (default: the model shipped with the package)."""
        path = DEFAULT_MODEL if path is None else Path(path)
        if not path.is_dir():
            raise RunError(
                f"{path} is not a folder; pass a run folder written by `punktraits train`"
            )
        run = cls(path, read_config(path / "config.json"))
        run.model  # noqa: B018  (load now: a broken folder fails here, not at the first image)
        return run

    @classmethod
    def create(cls, punks: Punks, cfg: TrainConfig, out: str | os.PathLike,
               progress: bool = True) -> Run:  # fmt: skip
        """Train a model with `cfg`'s recipe into the folder `out` (an existing one with the same
        settings is resumed), then evaluate it on the test split."""
        recipe = recipes.get(cfg.recipe)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        with locked(out, "wait for it or pass another --out"):
            return cls._create(recipe, punks, cfg, out, progress)

    @classmethod
    def _create(cls, recipe: Recipe, punks: Punks, cfg: TrainConfig, out: Path,
                progress: bool) -> Run:  # fmt: skip
        ids = Split(*split(punks.labels, n_test=cfg.n_test, seed=cfg.split_seed))
        config = {
            "recipe": cfg.recipe,
            "version": __version__,
            "seed": cfg.seed,
            "split_seed": cfg.split_seed,
            "n_test": cfg.n_test,
            "epochs": recipe.epochs(cfg),
            "data_sha256": punks.sha256,
            "device": str(torch.device(cfg.device)),
            "threads": torch.get_num_threads(),
            "train_config": asdict(cfg),
            **recipe.describe(punks, cfg, ids),
        }
        _start(out, config, ids)
        colours, counts = collection_palette(punks.images)  # colours only, for normalising
        write_json(out / "palette.json", {"colours": colours.tolist(), "counts": counts.tolist()},
                   indent=None)  # fmt: skip
        recipe.train(punks, cfg, out, config, ids, progress)
        run = cls.open(out)
        run.evaluate(punks)
        return run

    # -- what a run holds ------------------------------------------------------------------

    @cached_property
    def model(self) -> torch.nn.Module:
        model = self.recipe.load(self.path, self.config)
        if not all(torch.isfinite(t).all() for t in model.state_dict().values()
                   if t.is_floating_point()):  # fmt: skip
            raise RunError(f"{_non_finite_file(self.path)} holds non-finite weights (NaN or inf); "
                           "retrain or restore the file")  # fmt: skip
        return model

    @cached_property
    def split(self) -> Split:
        train, test = read_split(self.path / "split.json", self.config["n_test"])
        return Split(np.array(train, np.int64), np.array(test, np.int64))

    @cached_property
    def palette(self) -> tuple[np.ndarray, np.ndarray]:
        """The collection's RGBA colours (P, 4) uint8 and their pixel counts (P,)."""
        path = self.path / "palette.json"
        if not path.exists():  # run folders written before palettes were stored with them
            path = DEFAULT_MODEL / "palette.json"
        pal = read_palette(path)
        return np.array(pal["colours"], np.uint8), np.array(pal["counts"], np.int64)

    @cached_property
    def history(self) -> dict:
        return check_history(self.recipe.name, self.recipe.history(self.path, self.config),
                             self.path)  # fmt: skip

    def metrics(self) -> dict:
        return read_metrics(self.path / "metrics.json")

    # -- predicting and scoring ------------------------------------------------------------

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """P(trait) (N, T) for uint8 RGBA punks (N, 24, 24, 4), in the order of self.traits."""
        return self.recipe.probabilities(self.model, images)

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(P(trait) (N, T), P(head) (N, H) in the order of self.heads, or None)."""
        return self.recipe.predict(self.model, images)

    def decide(self, prob: np.ndarray) -> np.ndarray:
        """0/1 traits (N, T) from probabilities, by the recipe's rule."""
        return self.recipe.decide(prob)

    def check_data(self, punks: Punks) -> None:
        want = self.config.get("data_sha256", {}).get("punks.png")
        got = punks.sha256.get("punks.png")
        if want and got and want != got:
            raise DataError(
                f"the run was trained on punks.png {want[:12]}…, this data folder has {got[:12]}…"
            )

    def score_test_split(self, punks: Punks) -> TestScores:
        """Predict the test punks of the run's split and evaluate the predictions."""
        self.check_data(punks)
        test = self.split.test
        if test.max() >= len(punks):
            raise RunError(f"{self.path / 'split.json'}: test punk {test.max()} is not in this "
                           f"data folder's {len(punks):,} punks")  # fmt: skip
        cols = [punks.traits.index(t) for t in self.traits]
        truth = punks.labels[test][:, cols]
        hidden = None if punks.hidden is None else punks.hidden[test][:, cols]
        prob, head_prob = self.predict(punks.images[test])
        pred = self.decide(prob)
        m = evaluate(self.traits, truth, pred, hidden)
        if head_prob is None:
            return TestScores(test, truth, hidden, prob, pred, m)
        heads = head_prob.argmax(1)
        head_truth = np.array([self.heads.index(HEADS[h]) for h in punks.heads[test]])
        m["head_accuracy"] = float((heads == head_truth).mean())
        return TestScores(test, truth, hidden, prob, pred, m, heads, head_truth)

    def evaluate(self, punks: Punks) -> dict:
        """Evaluate the saved weights on the test split; write metrics.json and metrics.csv."""
        with locked(self.path, "wait for it to finish"):
            return self._evaluate(punks)

    def _evaluate(self, punks: Punks) -> dict:
        m = self.score_test_split(punks).metrics
        c = self.config
        metrics = {
            "recipe": c["recipe"], "seed": c["seed"], "epochs": c["epochs"],
            "train_seconds": round(self.recipe.train_seconds(self.history), 2),
            "device": c["device"], "threads": c["threads"], **m,
        }  # fmt: skip
        write_json(self.path / "metrics.json", metrics)
        atomic_write(self.path / "metrics.csv", to_csv(metrics).encode())
        return metrics


def _start(out: Path, config: dict, ids: Split) -> None:
    """Create the run folder, or check that an existing one was started with the same settings."""
    out.mkdir(parents=True, exist_ok=True)
    split_json = {"train": ids.train.tolist(), "test": ids.test.tolist()}
    if (out / "config.json").exists():
        old = read_config(out / "config.json")
        diff = sorted(
            k for k in set(old) | set(config) if k not in RESUMABLE and old.get(k) != config.get(k)
        )
        if diff:
            raise RunError(
                f"{out} holds a run with other settings ({', '.join(diff)}); "
                "pass another --out, or delete the folder to start over"
            )
        if read_json(out / "split.json") != split_json:
            raise RunError(f"{out}/split.json differs from this run's split; use another --out")
    write_json(out / "config.json", config)
    write_json(out / "split.json", split_json)


def train(punks: Punks, cfg: TrainConfig, out: str | os.PathLike, progress: bool = True) -> dict:
    """Train a run folder and return its test metrics (Run.create(...).metrics())."""
    return Run.create(punks, cfg, out, progress).metrics()


def _non_finite_file(run: Path) -> Path:
    """The first weight file of a run folder that holds NaN or inf (the folder if none does)."""
    from safetensors.torch import load_file

    for f in sorted(run.rglob("*.safetensors")):
        if not all(torch.isfinite(t).all() for t in load_file(str(f)).values()
                   if t.is_floating_point()):  # fmt: skip
            return f
    return run


LOCK = ".lock"  # in a run folder while a process trains or evaluates it: that process's id
_held: dict[Path, list] = {}  # run folders this process holds: [thread id, depth]


@contextmanager
def locked(folder: Path, hint: str):
    """Hold `folder`/.lock: any other process or thread that wants the folder fails at once,
    naming the holder. The lock is an flock, which the kernel releases when its process ends
    however it ends: a lock file left by a killed process is free and is taken over. The file
    holds the holder's pid (for the message) and is removed on release."""
    import fcntl
    import threading

    key, me = folder.resolve(), threading.get_ident()
    if key in _held:
        if _held[key][0] != me:
            raise RunError(f"{folder} is being trained by process {os.getpid()}; {hint}")
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    path = folder / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = ""
            for _ in range(20):  # the holder writes its pid just after taking the lock
                pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                if pid:
                    break
                time.sleep(0.01)
            os.close(fd)
            raise RunError(f"{folder} is being trained by process {pid or '?'}; {hint}") from None
        try:  # the file we locked may have been removed by its last holder meanwhile
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = [me, 1]
    try:
        yield
    finally:
        del _held[key]
        path.unlink(missing_ok=True)
        os.close(fd)
