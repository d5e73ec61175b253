"""What `predict` answers for one image: `Prediction`, plain data that any process can read.

A module of its own, beneath everything that needs torch: `predict --workers`' main process
receives the workers' answers and writes them without loading a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields


@dataclass
class Prediction:
    """The traits of one image."""

    file: str | None  # where it came from, if a file
    type: str | None  # one of Alien, Ape, Zombie, Female, Male
    accessories: list[str]  # the accessories, in trait order
    probabilities: dict[str, float]  # trait name -> the network's probability
    normalized: dict | None  # how the image was normalised (see normalize.Normalized)
    error: str | None = None  # None, or the one-line reason the image could not be read
    head: str | None = None  # the type with its skin tone (`Male 2`), as on-chain
    verified: bool | None = None  # drawn back pixel for pixel (None: not checked)
    check: dict | None = None  # how it was drawn back (verify.Check.to_dict), or why not
    original: dict | None = None  # the original with these exact pixels: {id, labels, agrees}
    nearest: dict | None = None  # when not an original: {id, differing_pixels} of the closest
    rarity: dict | None = None  # rarity.tools and OpenRarity scores and ranks of the answer
    box: list[int] | None = None  # [x, y, w, h] of the punk in a larger picture (None: the image)
    mirrored: bool = False  # the image shows the punk flipped left-right (the answer is the punk)
    drawn: object | None = field(default=None, repr=False)  # the drawing, a verify.Check (not in
    #   JSON, and not sent back by `predict --workers`' processes)

    def to_dict(self) -> dict:
        """Plain JSON types, `drawn` left out; a copy (changing it leaves the prediction)."""
        return {f.name: _copied(getattr(self, f.name)) for f in fields(self) if f.name != "drawn"}

    def to_json(self) -> str:
        """`to_dict` as JSON text, without copying first (a third of the time a folder's
        answers took to write)."""
        return json.dumps({n: getattr(self, n) for n in _FIELDS})


_FIELDS = tuple(f.name for f in fields(Prediction) if f.name != "drawn")
_PLAIN = frozenset({str, int, float, bool, type(None)})  # (kept as they are, without a call)


def _copied(value):
    """A copy of a JSON value (dicts, lists, tuples as lists); ~10x faster than asdict's
    deepcopy, which also copied the drawing's arrays only to drop them, and ~3x faster again
    without a call per number (92 probabilities a prediction)."""
    if isinstance(value, dict):
        return {k: v if type(v) in _PLAIN else _copied(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _PLAIN else _copied(v) for v in value]
    return value
