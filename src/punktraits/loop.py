"""The generic training loop: a model, batches, a loss, an optimiser and callbacks. It knows
nothing about punks or recipes (recipes/ pick its parts)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from .errors import PunktraitsError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def device(name: str) -> torch.device:
    """The torch device `name`, or a one-line error when it is not available here."""
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PunktraitsError(f"--device {name}: CUDA is not available here; use --device cpu")
    return dev


@dataclass
class Step:
    """What a training step reports to callbacks."""

    epoch: int
    step: int
    loss: torch.Tensor  # per model in the group, (K,) or scalar
    correct: torch.Tensor  # per model, share of the batch right
    images: int


LossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def fit(
    model: torch.nn.Module,
    batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    loss_fn: LossFn,
    optimiser: torch.optim.Optimizer,
    epochs: int,
    on_step: Callable[[Step], None] | None = None,
    on_epoch: Callable[[int], bool] | None = None,
) -> int:
    """Train `model` for `epochs`; `loss_fn(out, y)` returns (loss to minimise, per-model loss,
    per-model accuracy); `on_epoch(epoch)` may return True to stop early. Returns the number of
    epochs trained."""
    for epoch in range(epochs):
        model.train()
        for step, (x, y) in enumerate(batches(epoch)):
            out = model(x)
            loss, per_model, correct = loss_fn(out, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if on_step:
                on_step(Step(epoch, step, per_model.detach(), correct.detach(), len(x)))
        if on_epoch and on_epoch(epoch):
            return epoch + 1
    return epochs
