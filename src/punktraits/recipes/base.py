"""What every recipe is: the settings a run is trained with, and the interface a recipe
implements. A recipe owns everything that differs between two ways of training: its config
fields, input encoding, probabilities, decision, weight files and history, and its train()."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..data import Punks
from ..errors import PunktraitsError, RunError


@dataclass(frozen=True)
class TrainConfig:
    recipe: str = "ours"  # a name in recipes.REGISTRY: "ours", "paper", ...
    epochs: int | None = None  # None: the recipe's default (12 for both; ours may stop early)
    traits: tuple[str, ...] = ()  # paper recipe: train only these nets (default all 92)
    seed: int = 0  # seeds weights, sampling and the split's validation part
    split_seed: int = 0  # seeds the 8,000 / 2,000 train/test split
    n_test: int = 2000  # test punks
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", ...
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    variant: str = "code"  # paper recipe: "code" (authors' main.py) or "text" (the paper's prose)
    group: int | None = None  # paper recipe: nets side by side (None: all on CUDA, 1 on CPU)
    per_class: int = 8000  # paper recipe: oversampled positives (and negatives) per trait
    batch_size: int | None = None  # None: the recipe's default (paper 100, ours 64)
    drawn: int | None = None  # ours: new punks drawn by the learned sprites (None: 60,000)
    drawn_share: float | None = None  # ours: share of each epoch's punks drawn (None: 0.75)
    dry_run: bool = False  # a tiny budget that runs every code path (CI, smoke tests)
    extra: dict = field(default_factory=dict)  # recipe knobs recorded as given

    def resolved_epochs(self) -> int:
        return 12 if self.epochs is None else self.epochs


@dataclass(frozen=True)
class Split:
    """The ids a run trains and is tested on."""

    train: np.ndarray
    test: np.ndarray


class Recipe:
    """The interface of a recipe; subclasses register themselves in recipes/__init__.py.

    Probabilities are P(trait) in the order of config['traits']; `decide` turns them into 0/1.
    """

    name: ClassVar[str]
    help: ClassVar[str]  # one line for `punktraits train --help`
    knobs: ClassVar[dict] = {}  # settings `train --set KEY=VALUE` may give, with their defaults

    def epochs(self, cfg: TrainConfig) -> int:
        """The epoch budget this run trains with (recorded in config.json)."""
        return cfg.resolved_epochs()

    def describe(self, punks: Punks, cfg: TrainConfig, split: Split) -> dict:
        """The recipe's own fields of config.json: model arguments, traits, input, settings."""
        raise NotImplementedError

    def train(self, punks: Punks, cfg: TrainConfig, run: Path, config: dict, split: Split,
              progress: bool = True) -> None:  # fmt: skip
        """Train and write the weights and history files into the run folder `run`."""
        raise NotImplementedError

    def load(self, run: Path, config: dict) -> torch.nn.Module:
        """The trained model of a run folder, on the CPU, in eval mode."""
        raise NotImplementedError

    def probabilities(self, model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
        """P(trait) (N, T) for uint8 RGBA punks (N, 24, 24, 4)."""
        raise NotImplementedError

    def predict(self, model: torch.nn.Module, images: np.ndarray):
        """(P(trait) (N, T), P(head) (N, H) or None when the model has no head outputs)."""
        return self.probabilities(model, images), None

    def decide(self, prob: np.ndarray) -> np.ndarray:
        """0/1 traits (N, T) from probabilities; default: each trait on its own at 0.5."""
        return (prob >= 0.5).astype(np.uint8)

    def scores(self, model: torch.nn.Module, images: np.ndarray, traits: list[str],
               config: dict) -> np.ndarray:  # fmt: skip
        """A score per image and asked trait (N, len(traits)) whose drop explains a pixel
        (occlusion maps); default: the log-probability."""
        cols = [config["traits"].index(t) for t in traits]
        prob = self.probabilities(model, images)[:, cols]
        return np.log(np.clip(prob, 1e-9, 1.0))

    def history(self, run: Path, config: dict) -> dict:
        """The run's training history as written by train()."""
        raise NotImplementedError

    def curves(self, history: dict, config: dict) -> dict:
        """Training curves for the report (Figs. 11-12):

        {"loss", "accuracy": per training step; "test_loss", "test_accuracy": per epoch;
         "steps_per_epoch": int; "what": what accuracy means; "note": one line;
         "best_epoch": int or None; "per_trait": {trait: curves of that trait's own net} or None}
        """
        raise NotImplementedError

    def train_seconds(self, history: dict) -> float:
        raise NotImplementedError

    def export_onnx(self, model: torch.nn.Module, path: Path) -> None:
        raise PunktraitsError(f"ONNX export is not available for the {self.name!r} recipe")


def load_state(model: torch.nn.Module, state: dict, run: Path) -> None:
    """Load weights into `model`, or say in one line that they do not fit its config."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise RunError(
            f"weights in {run} do not fit the model its config.json describes: {first}"
        ) from None
