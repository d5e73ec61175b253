"""Answers that prove themselves: draw an answer back with the collection's drawing rules
(sprites.py, learned from the training split) and compare it with the normalised image.

    verifier = Verifier(sprites)
    check = verifier.check(punk, head="Male 2", accessories=["Earring"], confidence=...)
    check.verified, check.head, check.accessories, check.differing

- The drawing equals the image on every known pixel: `verified`.
- Otherwise nearby answers are drawn — the least confident traits first, one accessory per slot,
  the other heads of the same or the next likely type — and the one that draws the image is
  reported instead (`corrected_from` says what the network answered).
- If none draws it exactly, the nearest drawing is kept, `verified` is False, and `differing`
  counts the pixels where it and the image differ. An image that no trait set draws close to
  (more than `REFUSE` differing pixels) is not a CryptoPunk: `check.refused` says why.

Painted-over accessories never change a drawing: a verified answer keeps only the accessories its
drawing needs, so it claims the visible traits and nothing a later layer hides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .data import HEADS, TYPES
from .sprites import MAX_LAYERS, Sprites, gender

REFUSE = 12  # differing pixels beyond which an image is not a punk (real punks: 0; 1-2 px edits
#              of a punk are answered, unverified; non-punks differ in 100s, see RESULTS)
ROUNDS = 6  # greedy improvement rounds when the first drawing differs


@dataclass
class Check:
    """The answer drawn back and compared with the image."""

    verified: bool  # the drawing equals the image on every known pixel
    head: str  # the head drawn (type with skin tone)
    accessories: list[str]  # the accessories drawn, in layer order
    differing: int  # known pixels where the drawing and the image differ
    unknown: int  # pixels the learned sprites cannot know (never seen in training)
    tried: int  # answers drawn
    corrected_from: dict | None = None  # the network's answer, when another one is reported
    drawn: np.ndarray | None = field(default=None, repr=False)  # (24, 24, 4) the drawing
    where: np.ndarray | None = field(default=None, repr=False)  # (24, 24) bool: differing

    @property
    def type(self) -> str:
        return self.head.split()[0]

    @property
    def refused(self) -> str | None:
        """None, or why this image is not a CryptoPunk."""
        if self.differing <= REFUSE:
            return None
        acc = ", ".join(self.accessories) or "no accessories"
        return (
            f"not a CryptoPunk: the nearest drawing ({self.head}; {acc}) differs from it in "
            f"{self.differing} of {576 - self.unknown} pixels"
        )

    def to_dict(self) -> dict:
        return {
            "verified": self.verified,
            "differing_pixels": self.differing,
            "unknown_pixels": self.unknown,
            "tried": self.tried,
            "corrected_from": self.corrected_from,
        }


class Verifier:
    """Draws answers with `sprites` and searches nearby ones."""

    def __init__(self, sprites: Sprites):
        self.sprites = sprites
        self.slot = {a: k for k, group in enumerate(sprites.slots) for a in group}
        self.layer = {a: k for k, a in enumerate(sprites.order)}
        versions = set(sprites.versions)
        self.wearable = {g: [a for a in sprites.order if (a, g) in versions]
                         for g in ("male", "female")}  # fmt: skip

    def _draw(self, answers: list[tuple[str, tuple[str, ...]]], punk: np.ndarray):
        """Differing (N,), unknown (N,) pixel counts, the images and the differing masks."""
        images, known = self.sprites.render_many(answers)  # (N, 24, 24, 4), (N, 24, 24)
        differ = (images != punk).any(-1) & known  # (N, 24, 24)
        return differ.sum((1, 2)), (~known).sum((1, 2)), images, differ

    def _legal(self, head: str, acc: tuple[str, ...]) -> tuple[str, ...] | None:
        """The accessories in layer order, or None when `head` cannot wear them."""
        g = gender(head)
        if any((a, g) not in self.sprites.versions for a in acc) or len(acc) > 7:
            return None
        return tuple(sorted(acc, key=self.layer.get))

    def _neighbours(self, head: str, acc: tuple[str, ...], heads: list[str]):
        """Answers one edit away: another head, an accessory added (replacing the one in its
        slot) or removed."""
        out = [(h, acc) for h in heads if h != head]
        for a in self.wearable[gender(head)]:
            if a in acc:
                out.append((head, tuple(x for x in acc if x != a)))
            else:
                out.append((head, tuple(x for x in acc if self.slot[x] != self.slot[a]) + (a,)))
        return [(h, legal) for h, a in out if (legal := self._legal(h, a)) is not None]

    def check_many(
        self, punks: np.ndarray, answers: list[tuple[str, list[str]]], heads: list[list[str]]
    ) -> list[Check]:
        """`check` for many punks (N, 24, 24, 4): the answers are drawn in one go, and only the
        ones whose drawing differs are searched."""
        starts = [self._start(h, a) for h, a in answers]
        diff, unknown, images, where = self._draw(starts, punks)
        out = []
        for i, (h, a) in enumerate(answers):
            first = (int(diff[i]), int(unknown[i]), *starts[i], images[i], where[i])
            out.append(self._search(punks[i], h, a, heads[i], first))
        return out

    def check(self, punk: np.ndarray, head: str, accessories: list[str],
              heads: list[str] | None = None) -> Check:  # fmt: skip
        """Draw `head` with `accessories` and compare with `punk` (24, 24, 4) uint8; search
        nearby answers if they differ. `heads`: the heads to try, most likely first (default:
        the heads of the same type)."""
        heads = heads or [h for h in HEADS if h.split()[0] == head.split()[0]]
        return self.check_many(punk[None], [(head, accessories)], [heads])[0]

    def _start(self, head: str, accessories: list[str]) -> tuple[str, tuple[str, ...]]:
        legal = self._legal(head, tuple(accessories))
        if legal is None:  # e.g. a female-only accessory on a male head: drop what cannot be
            # drawn, keep the first of each slot in the order given (the likeliest first) and at
            # most the 7 a punk can wear; the search then adds or removes from there
            g = gender(head)
            slot = {a: k for k, group in enumerate(self.sprites.slots) for a in group}
            kept: list[str] = []
            for a in accessories:
                if (a, g) in self.sprites.versions and slot.get(a) not in {slot[b] for b in kept}:
                    kept.append(a)
            legal = tuple(a for a in self.sprites.order if a in kept[: MAX_LAYERS - 1])
        return head, legal

    def _visible_only(self, punk, best):
        """Drop accessories the drawing does not need (painted over by later layers): an answer
        claims only what its pixels show, as the visible labels do."""
        tried = 0
        while best[3]:
            h, acc = best[2], best[3]
            cands = [(h, tuple(x for x in acc if x != a)) for a in acc]
            diff, unknown, images, where = self._draw(cands, punk)
            tried += len(cands)
            # Not needed: the drawing stays equal and no pixel it explained becomes unknown
            # (a hat over the Ape's crown, which no training punk shows bare, is needed).
            ok = np.flatnonzero((diff == 0) & (unknown <= best[1]))
            if not len(ok):
                break
            k = int(ok[0])
            best = (0, int(unknown[k]), *cands[k], images[k], where[k])
        return best, tried

    def _search(self, punk, head, accessories, heads, best) -> Check:
        tried = 1
        for _ in range(ROUNDS if best[0] else 0):
            cands = self._neighbours(best[2], best[3], heads)
            diff, unknown, images, where = self._draw(cands, punk)
            tried += len(cands)
            k = int(np.lexsort((unknown, diff))[0])  # fewest differing, then fewest unknown
            if (diff[k], unknown[k]) >= (best[0], best[1]):
                break
            best = (int(diff[k]), int(unknown[k]), *cands[k], images[k], where[k])
            if best[0] == 0:
                break
        if best[0] == 0:
            best, n = self._visible_only(punk, best)
            tried += n
        d, u, h, acc, image, mask = best
        asked = (head, tuple(sorted(accessories, key=lambda a: self.layer.get(a, 99))))
        changed = (h, acc) != asked
        return Check(
            verified=d == 0, head=h, accessories=list(acc), differing=d, unknown=u, tried=tried,
            corrected_from={"head": head, "accessories": list(asked[1])} if changed else None,
            drawn=image, where=mask,
        )  # fmt: skip


def likely_heads(type_prob: dict[str, float], head_prob: dict[str, float] | None) -> list[str]:
    """Heads to try, most likely first: by the network's head outputs when it has them, else
    the heads of each type in the order of the type probabilities."""
    if head_prob:
        return sorted(head_prob, key=head_prob.get, reverse=True)
    kinds = sorted(TYPES, key=lambda t: -type_prob.get(t, 0.0))
    return [h for t in kinds for h in HEADS if h.split()[0] == t]
