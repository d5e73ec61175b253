"""What every file of a run folder must hold, checked when it is read (pydantic v2, strict).

A damaged or hand-edited file is a RunError in one line that names the file and the field:

    runs/x/config.json: model.embed must be an integer (got 'a')
    runs/x/split.json: test[3] must be at most 9999 (got 10000)
    runs/x/metrics.json: macro_f1 is 0.99999 but the mean of per_trait f1 is 0.875548

    read_config(path), read_split(path, n_test), read_palette(path), read_metrics(path)
    check_history(recipe, history, run)     the keys the recipe's curves and evaluate() read

A recipe's own config fields (its model arguments, input, settings) are checked by the model in
CONFIGS under its name; a recipe not listed there (a plug-in) gets the fields every run has.
The files are returned as read: validation never rewrites what a run folder holds.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .data import N_PUNKS, TRAITS, TYPES
from .errors import RunError
from .files import read_json, slug
from .models import PunkNet

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
OPEN = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)  # a recipe adds its fields
TOLERANCE = 1e-9  # metrics are recomputed in the same float64 order; this is rounding slack

Count = Field(ge=0)
Share = Field(ge=0.0, le=1.0)
MaybeShare = Field(default=None, ge=0.0, le=1.0)


# --- config.json --------------------------------------------------------------------------------


class Model(BaseModel):
    model_config = OPEN
    name: str


class Config(BaseModel):
    """The fields every run's config.json has (run.Run.create writes them)."""

    model_config = OPEN
    recipe: str
    version: str
    seed: int
    split_seed: int
    n_test: int = Field(ge=1)
    epochs: int = Field(ge=0)
    data_sha256: dict[str, str]
    device: str
    threads: int = Field(ge=1)
    train_config: dict[str, Any]
    model: Model
    traits: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_traits(self):
        seen = set()
        for i, t in enumerate(self.traits):
            if t not in TRAITS:
                raise ValueError(f"traits[{i}] {shown(t)} is not one of the 92 trait names")
            if t in seen:
                raise ValueError(f"traits[{i}] {shown(t)} is listed twice")
            seen.add(t)
        return self


class Ours(Config):
    """recipes/ours.py: one PunkNet for all traits, types first (its decision takes their argmax)."""

    input: Literal["rgba"]
    target: Literal["visible", "official"]
    batch_size: int = Field(ge=1)
    optimiser: dict[str, Any]
    validation_ids: list[int]

    @model_validator(mode="after")
    def _punknet(self):
        args = dict(self.model.model_extra or {})
        params = inspect.signature(PunkNet.__init__).parameters
        if self.model.name != "PunkNet":
            raise ValueError(f"model.name must be 'PunkNet' (got {shown(self.model.name)})")
        for key, value in args.items():
            if key not in params or key == "self":
                raise ValueError(f"model.{key} is not an argument of PunkNet")
            if type(value) is not int:
                raise ValueError(f"model.{key} must be an integer (got {shown(value)})")
            low = 0 if params[key].default == 0 else 1
            if value < low:
                raise ValueError(f"model.{key} must be at least {low} (got {value})")
        for key, p in params.items():
            if key != "self" and p.default is inspect.Parameter.empty and key not in args:
                raise ValueError(f"model.{key} is missing")
        n = args.get("n_traits", params["n_traits"].default)
        if n != len(self.traits):
            raise ValueError(f"traits has {len(self.traits)} names but model.n_traits is {n}")
        if tuple(self.traits[: len(TYPES)]) != TYPES:
            raise ValueError(f"traits must begin with the {len(TYPES)} types {', '.join(TYPES)}")
        return self


class PaperModel(BaseModel):
    model_config = STRICT
    name: Literal["PaperNets"]
    variant: Literal["code", "text"]


class Paper(Config):
    """recipes/paper.py: one PaperNets per trait, on greyscale."""

    model: PaperModel
    input: Literal["grey"]
    batch_size: int = Field(ge=1)
    per_class: int = Field(ge=1)
    group: int = Field(ge=1)
    optimiser: dict[str, Any]


CONFIGS: dict[str, type[Config]] = {"ours": Ours, "paper": Paper}


def check_config(config: object, path: Path) -> dict:
    """`config` (the JSON of `path`) if it is a run's config.json; else a RunError."""
    recipe = config.get("recipe") if isinstance(config, dict) else None
    _validate(CONFIGS.get(recipe, Config) if isinstance(recipe, str) else Config, config, path)
    return config


def read_config(path: Path) -> dict:
    return check_config(read_json(path), path)


# --- split.json, palette.json -------------------------------------------------------------------


class SplitFile(BaseModel):
    model_config = STRICT
    train: list[int] = Field(min_length=1)
    test: list[int] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids(self):
        for key in ("train", "test"):
            for i, v in enumerate(getattr(self, key)):
                if not 0 <= v < N_PUNKS:
                    raise ValueError(f"{key}[{i}] must be a punk id 0..{N_PUNKS - 1} (got {v})")
            if len(set(getattr(self, key))) != len(getattr(self, key)):
                dup = _first_repeat(getattr(self, key))
                raise ValueError(f"{key} lists punk {dup} twice")
        both = set(self.train) & set(self.test)
        if both:
            raise ValueError(f"punk {min(both)} is in both train and test")
        return self


def read_split(path: Path, n_test: int | None = None) -> tuple[list[int], list[int]]:
    """(train ids, test ids) of a split.json; `n_test` is the count config.json promises."""
    s = read_json(path)
    _validate(SplitFile, s, path)
    if n_test is not None and len(s["test"]) != n_test:
        raise RunError(
            f"{path}: test has {len(s['test'])} ids but config.json says n_test {n_test}"
        )
    return s["train"], s["test"]


class PaletteFile(BaseModel):
    model_config = STRICT
    colours: list[list[int]] = Field(min_length=1)
    counts: list[int] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self):
        for i, c in enumerate(self.colours):
            if len(c) != 4 or not all(0 <= v <= 255 for v in c):
                raise ValueError(f"colours[{i}] must be 4 values 0..255 (RGBA), got {shown(c)}")
        if len(self.counts) != len(self.colours):
            raise ValueError(
                f"counts has {len(self.counts)} values for {len(self.colours)} colours"
            )
        for i, n in enumerate(self.counts):
            if n < 0:
                raise ValueError(f"counts[{i}] must be at least 0 (got {n})")
        if len({tuple(c) for c in self.colours}) != len(self.colours):
            raise ValueError(f"colour {_first_repeat(map(tuple, self.colours))} is listed twice")
        return self


def read_palette(path: Path) -> dict:
    palette = read_json(path)
    _validate(PaletteFile, palette, path)
    return palette


# --- history ------------------------------------------------------------------------------------

Number = float  # strict floats take ints as well; histories may hold NaN (a diverged run)
HISTORY = ConfigDict(strict=True, extra="allow", allow_inf_nan=True)


class Epoch(BaseModel):
    model_config = HISTORY
    epoch: int = Field(ge=1)
    train_loss: Number
    test_loss: Number | None = None
    test_accuracy: Number | None = None


class Steps(BaseModel):
    model_config = HISTORY
    loss: list[Number]
    accuracy: list[Number]


class OursHistory(BaseModel):
    model_config = HISTORY
    epochs: list[Epoch] = Field(min_length=1)
    best_epoch: int = Field(ge=1)
    train_seconds: Number = Field(ge=0)
    steps_per_epoch: int | None = Field(default=None, ge=1)
    steps: Steps | None = None

    @model_validator(mode="after")
    def _consistent(self):
        if self.best_epoch > len(self.epochs):
            raise ValueError(
                f"best_epoch {self.best_epoch} is after the last of {len(self.epochs)} epochs"
            )
        if self.steps is not None:
            if self.steps_per_epoch is None:
                raise ValueError("steps_per_epoch is missing (the per-step curves need it)")
            if len(self.steps.loss) != len(self.steps.accuracy):
                raise ValueError("steps.loss and steps.accuracy differ in length")
        return self


class PaperNet(BaseModel):
    model_config = HISTORY
    trait: str
    loss: list[Number] = Field(min_length=1)
    accuracy: list[Number] = Field(min_length=1)
    test_loss: list[Number]
    test_accuracy: list[Number]
    train_seconds: Number = Field(ge=0)


def check_history(recipe: str, history: object, run: Path) -> dict:
    """The recipe's history (Recipe.history) if it holds what its curves and evaluate read."""
    if recipe == "ours":
        _validate(OursHistory, history, run / "history.json")
    elif recipe == "paper":
        for i, (trait, h) in enumerate(history.items()):
            path = run / "nets" / f"{i:02d}-{slug(trait)}.json"
            _validate(PaperNet, h, path)
            if h["trait"] != trait:
                raise RunError(f"{path}: trait is {shown(h['trait'])}, expected {shown(trait)}")
    return history


# --- metrics.json -------------------------------------------------------------------------------


class TraitRow(BaseModel):
    model_config = STRICT
    support: int = Count
    tp: int = Count
    fp: int = Count
    fn: int = Count
    tn: int = Count
    accuracy: float = Share
    precision: float = Share
    precision_paper: float = Share
    recall: float = Share
    f1: float = Share
    f1_visible: float | None = MaybeShare
    f1_ceiling: float | None = MaybeShare


class MetricsFile(BaseModel):
    """metrics.evaluate's summary plus the run's settings (run.Run.evaluate)."""

    model_config = OPEN
    recipe: str
    seed: int
    epochs: int = Field(ge=0)
    train_seconds: float = Field(ge=0)
    device: str
    threads: int = Field(ge=1)
    n_test: int = Field(ge=1)
    macro_f1: float = Share
    exact_match: float = Share
    macro_f1_visible: float | None = MaybeShare
    macro_f1_ceiling: float | None = MaybeShare
    exact_match_visible: float | None = MaybeShare
    per_trait: dict[str, TraitRow] = Field(min_length=1)

    @model_validator(mode="after")
    def _aggregates(self):
        n = self.n_test
        for t, r in self.per_trait.items():
            where = f"per_trait.{t}"
            if r.tp + r.fp + r.fn + r.tn != n:
                raise ValueError(f"{where}: tp + fp + fn + tn is {r.tp + r.fp + r.fn + r.tn}, "
                                 f"not n_test {n}")  # fmt: skip
            if r.support != r.tp + r.fn:
                raise ValueError(f"{where}: support {r.support} is not tp + fn ({r.tp + r.fn})")
            derived = {
                "accuracy": (r.tp + r.tn) / n,
                "precision": r.tp / (r.tp + r.fp) if r.tp + r.fp else 0.0,
                "precision_paper": r.tp / (r.tp + r.fp) if r.tp + r.fp else 1.0,
                "recall": r.tp / (r.tp + r.fn) if r.tp + r.fn else 0.0,
                "f1": 2 * r.tp / (2 * r.tp + r.fp + r.fn) if r.tp + r.fp + r.fn else 0.0,
            }
            for key, want in derived.items():
                if abs(getattr(r, key) - want) > TOLERANCE:
                    raise ValueError(f"{where}.{key} is {getattr(r, key)} but its counts give "
                                     f"{want:.6f}")  # fmt: skip
        rows = list(self.per_trait.values())
        for agg, key in (("macro_f1", "f1"), ("macro_f1_visible", "f1_visible"),
                         ("macro_f1_ceiling", "f1_ceiling")):  # fmt: skip
            values = [getattr(r, key) for r in rows]
            have = getattr(self, agg)
            if have is None and all(v is None for v in values):
                continue
            if have is None or any(v is None for v in values):
                raise ValueError(f"{agg} and per_trait {key} must both be given or both null")
            mean = math.fsum(values) / len(values)
            if abs(have - mean) > TOLERANCE:
                raise ValueError(f"{agg} is {have} but the mean of per_trait {key} is {mean:.6f}")
        return self


def check_metrics(metrics: object, path: Path) -> dict:
    _validate(MetricsFile, metrics, path)
    return metrics


def read_metrics(path: Path) -> dict:
    return check_metrics(read_json(path), path)


# --- one-line errors ----------------------------------------------------------------------------

WHAT = {
    "missing": "is missing",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "extra_forbidden": "is not a known field",
    "none_required": "must be null",
}


def shown(value: object, limit: int = 40) -> str:
    """A value as an error message shows it: short, on one line."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, (list, dict)):
        return f"a list of {len(value)}" if isinstance(value, list) else "an object"
    return text[: limit - 1] + "…"


def kind_of(value: object) -> str:
    """What a JSON value is, in words."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), "a number")


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validate(model: type[BaseModel], data: object, path: Path) -> None:
    try:
        model.model_validate(data)
    except ValidationError as e:
        raise RunError(f"{path}: {_sentence(e.errors()[0])}") from None


def _sentence(err: dict) -> str:
    kind, loc, ctx = err["type"], tuple(err["loc"]), err.get("ctx") or {}
    where = _where(loc)
    if kind == "value_error":  # our own checks: a whole sentence
        msg = str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
        return f"{where}: {msg}" if where else msg
    if kind in ("model_type", "dict_type") and not loc:
        return f"must be a JSON object (got {kind_of(err.get('input'))})"
    if kind == "literal_error":
        what = f"must be {ctx.get('expected')}"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()))
        what = {"greater_than_equal": "at least", "greater_than": "greater than",
                "less_than_equal": "at most", "less_than": "less than"}[kind]  # fmt: skip
        what = (
            f"must be {what} {bound:g}" if isinstance(bound, float) else f"must be {what} {bound}"
        )
    elif kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"{where} must not be empty" if n == 1 else f"{where} needs at least {n} items"
    elif kind in ("missing", "extra_forbidden"):
        return f"{where} {WHAT[kind]}"
    else:
        what = WHAT.get(kind) or str(err["msg"]).lower()
    return f"{where} {what} (got {shown(err.get('input'))})"


def _first_repeat(values) -> object:
    seen = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None
