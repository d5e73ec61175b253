"""The recipes, by name. A recipe is one module with a `Recipe` subclass (see base.py); adding
one is that module plus a line here (or a call to `register` from your own code)."""

from __future__ import annotations

from ..errors import RunError
from .base import Recipe, Split, TrainConfig
from .ours import Ours
from .paper import Paper

REGISTRY: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Make `recipe` available by its name to `train --recipe`, run folders, predict, report."""
    REGISTRY[recipe.name] = recipe
    return recipe


def get(name: object) -> Recipe:
    if not isinstance(name, str) or name not in REGISTRY:
        raise RunError(f"unknown recipe {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


register(Ours())
register(Paper())

__all__ = ["REGISTRY", "Recipe", "Split", "TrainConfig", "get", "register"]
