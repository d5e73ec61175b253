"""A lossy WebP's encoder, found again from the file: Pillow's (libwebp's) encoder at the
quality the file was made with, then the decoder.

A WebP file does not say its quality, but its VP8 frame header says what the encoder derived
from it: the quantiser of each of its four segments (and the loop filter). The quantisers fall
as the quality rises, so the quality whose encoding of a drawing has the file's header is found
by bisection (`Webp`); a drawing of the right punk, drawn the right way, then encodes to the
file's every pixel at that quality, as a JPEG re-encoded with its own tables does (the encoder is
deterministic). The quantisers also depend on the picture (its segments are found by analysing
it), so a wrong drawing may find no quality with the file's header: it is then encoded at the
quality whose base quantiser is nearest, and differs from the file anyway.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from .work import ENCODE, ENCODE_PIXEL, charge

__all__ = ["Webp", "vp8_header"]


def vp8_header(data: bytes) -> tuple | None:
    """The settings in a lossy WebP's VP8 key-frame header (RFC 6386 9.3-9.6, 19.2: colour
    space, segments with their quantisers and loop filters, the filter, its deltas, partitions,
    the base quantiser and its deltas), as one tuple with the base quantiser last but one; None
    when `data` is not a WebP with a lossy frame (a lossless one has no quality)."""
    if len(data) < 20 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    at = 12
    while at + 8 <= len(data):
        tag, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        if tag == b"VP8 ":
            frame = data[at + 8 : at + 8 + size]
            break
        at += 8 + size + (size & 1)
    else:
        return None
    if len(frame) < 12 or frame[0] & 1 or frame[3:6] != b"\x9d\x01\x2a":
        return None  # not a key frame
    bits = _Bools(frame[10:])
    bit = bits.literal

    def signed(n: int) -> int:
        v = bit(n)
        return -v if bit(1) else v

    out: list = [bit(1), bit(1)]  # colour space, clamping
    if bit(1):  # segments
        update_map, update_data = bit(1), bit(1)
        out.append((update_map, update_data))
        if update_data:
            out.append(bit(1))  # absolute values or deltas
            out.append(tuple(signed(7) if bit(1) else 0 for _ in range(4)))  # quantisers
            out.append(tuple(signed(6) if bit(1) else 0 for _ in range(4)))  # loop filters
        if update_map:
            out.append(tuple(bit(8) if bit(1) else 255 for _ in range(3)))
    out += [bit(1), bit(6), bit(3)]  # filter type, level, sharpness
    if bit(1) and bit(1):  # loop filter deltas, updated
        out.append(tuple(signed(6) if bit(1) else 0 for _ in range(8)))
    out.append(bit(2))  # partitions
    out.append(bit(7))  # the base quantiser
    out.append(tuple(signed(4) if bit(1) else 0 for _ in range(5)))
    return tuple(out)


class _Bools:
    """VP8's boolean entropy decoder (RFC 6386 7.3), for the header's literals."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 2
        self.value = (data[0] << 8) | data[1] if len(data) > 1 else 0
        self.range, self.count = 255, 0

    def bool(self, prob: int) -> int:
        split = 1 + (((self.range - 1) * prob) >> 8)
        big = split << 8
        if self.value >= big:
            bit, self.range, self.value = 1, self.range - split, self.value - big
        else:
            bit, self.range = 0, split
        while self.range < 128:
            self.value <<= 1
            self.range <<= 1
            self.count += 1
            if self.count == 8:
                self.count = 0
                if self.at < len(self.data):
                    self.value |= self.data[self.at]
                self.at += 1
        return bit

    def literal(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bool(128)
        return v


def _encoded(img: np.ndarray, quality: int) -> bytes:
    charge(ENCODE + ENCODE_PIXEL * img.shape[0] * img.shape[1])
    buf = io.BytesIO()
    Image.fromarray(img, "RGBA" if img.shape[-1] == 4 else "RGB").save(
        buf, format="WEBP", quality=quality
    )
    return buf.getvalue()


def _decoded(data: bytes, mode: str) -> np.ndarray:
    """`data` (a WebP we encoded) decoded; named as one, Pillow does not try its other
    formats' openers first (~0.05 ms of ~0.13 at 36 px)."""
    return np.asarray(Image.open(io.BytesIO(data), formats=["WEBP"]).convert(mode))


class Webp:
    """img (h, w, 3) uint8, or (h, w, 4) with its transparency (coded apart, losslessly, as
    Pillow does) -> the image encoded as the file `header` (`vp8_header`) was, then decoded.

    The qualities are found on the first drawing whose encoding has the file's header at some
    quality (`qualities`: two neighbouring ones may share a header and still encode apart, as
    q69 and q70 do; and the drawing may be an accessory off, so the qualities either side are
    kept too), and kept; until one has, each drawing is bisected again (a few at most:
    SEARCHES), and then searched among the few qualities around the nearest guess. Of several
    qualities, the one whose decoding comes closest to the file's pixels (`target`) is given;
    once a drawing gives them back exactly, with the header, the qualities at which it does are
    the file's (`qualities`, `exact`)."""

    SEARCHES = 4  # drawings bisected before the nearest quality is kept

    def __init__(self, header: tuple, target: np.ndarray | None = None):
        self.header = header
        self.target = None if target is None else target.astype(np.int16)
        self.qualities: list[int] = []  # a drawing encoded at these has the file's header
        self.nearest: int | None = None  # the best guess while none is found
        self.exact = False  # a drawing gave the file back at `quality`
        self.last: int | None = None  # the quality the last drawing came closest at
        self.searches = 0
        self.encodes = 0

    @property
    def quality(self) -> int | None:
        return self.qualities[0] if self.qualities else None

    def __call__(self, img: np.ndarray) -> np.ndarray:
        mode = "RGBA" if img.shape[-1] == 4 else "RGB"
        if not self.qualities:
            if self.searches >= self.SEARCHES and self.nearest is not None:
                data = self._bisect(img, self.nearest)  # (a few qualities around the guess)
            else:
                self.searches += 1
                data = self._bisect(img)
            if len(self.qualities) <= 1 or self.target is None:
                return _decoded(data, mode)
        if self.exact or len(self.qualities) == 1 or self.target is None:
            return _decoded(self._encode(img, self.qualities[0]), mode)
        datas = [self._encode(img, q) for q in self.qualities]
        outs = [_decoded(data, mode) for data in datas]
        errs = [int(np.abs(o.astype(np.int16) - self.target).sum()) for o in outs]
        k = int(np.argmin(errs))
        self.last = self.qualities[k]
        self._given_back(dict(zip(self.qualities, datas)), dict(zip(self.qualities, outs)))
        return outs[k]

    def every(self, img: np.ndarray) -> np.ndarray:
        """`img` encoded at each of the file's qualities (several when a drawing gave the file
        back at each: `_given_back`) until one gives the file back, decoded; else the first's.
        Whether a drawing gives the file back at all (the ties of `verify._ties`); `__call__`
        encodes at the first alone (a drawing's closeness is told there as well)."""
        if not self.exact or len(self.qualities) == 1:
            return self(img)
        mode = "RGBA" if img.shape[-1] == 4 else "RGB"
        outs = []
        for q in self.qualities:
            outs.append(_decoded(self._encode(img, q), mode))
            if np.array_equal(outs[-1], self.target):
                return outs[-1]
        return outs[0]

    def _given_back(self, datas: dict[int, bytes], outs: dict[int, np.ndarray] | None = None):
        """A drawing encoded at each of the qualities `datas` says: those that give the file
        back, with its header, are the file's (`qualities`, `exact`), if any. All of them are
        kept: a drawing may give the file back at two neighbouring qualities where another
        gives it back at one only (#1045 at 36 px bilinear q70: the truth with a Silver Chain
        the encoder erases gives it back at q69 and q70, the truth at q70 alone; kept at q69,
        the tie went unseen and the Silver Chain was verified): ties are told at each
        (`every`). `outs`: those encodings decoded, where they were already."""
        mode, outs = "RGBA" if self.target.shape[-1] == 4 else "RGB", outs or {}
        back = [q for q, data in datas.items() if vp8_header(data) == self.header and
                np.array_equal(outs[q] if q in outs else _decoded(data, mode), self.target)]  # fmt: skip
        if back:
            self.qualities, self.exact = sorted(back), True

    @property
    def candidates(self) -> list[int]:
        """The qualities the file may have: `qualities`, or while no drawing has had its
        header, those around the `nearest` guess (a picture's base quantiser depends on it:
        the file's quality may share it with its neighbours, or not), nearest first."""
        if self.qualities or self.nearest is None:
            return self.qualities
        near = (self.nearest, self.nearest + 1, self.nearest - 1, self.nearest + 2)
        return [q for q in near if 0 <= q <= 100]

    def settled(self):
        """This encoder at the one quality the last drawing came closest at (the same drawing
        on another background, a level off, comes closest there too): one encoding a drawing
        instead of one a quality. A drawing it gives the file back for makes that quality the
        file's."""
        if self.exact or self.last is None or len(self.qualities) < 2:
            return self
        return self.at(self.last)

    def at(self, q: int):
        """This encoder at quality `q` alone; an encoding that gives the file back, with the
        file's header, makes the file's qualities it and those of the others it may have
        (`candidates`) at which the drawing gives it back too (`_given_back`)."""

        def codec(img: np.ndarray) -> np.ndarray:
            data = self._encode(img, q)
            out = _decoded(data, "RGBA" if img.shape[-1] == 4 else "RGB")
            if (self.target is not None and not self.exact and np.array_equal(out, self.target)
                    and vp8_header(data) == self.header):  # fmt: skip
                others = [o for o in self.candidates if o != q]
                self._given_back({q: data, **{o: self._encode(img, o) for o in others}})
            return out

        return codec

    def _encode(self, img: np.ndarray, quality: int) -> bytes:
        self.encodes += 1
        return _encoded(np.ascontiguousarray(img), quality)

    def _closest(self, tried: dict[int, bytes], want: int) -> bytes | None:
        """Of the encodings `tried` whose base quantiser is the file's, the one whose decoding
        comes closest to the file (`last`: its quality): no drawing has had the file's whole
        header yet (all a few levels off, the background), and of the qualities that share
        its base quantiser the lowest may not be the file's (#7628 at 36 px nearest: q69 and
        q70 share it; the truth, on the background the search reached, two levels off, comes
        1.8 levels from the q70 file at q69, 1.3 at q70). None without `target`."""
        same = [q for q, data in tried.items() if vp8_header(data)[-2] == want]
        if self.target is None or len(same) < 2:
            return None
        mode = "RGBA" if self.target.shape[-1] == 4 else "RGB"
        outs = {q: _decoded(tried[q], mode) for q in same}
        self.last = min(same, key=lambda q: int(np.abs(outs[q] - self.target).sum()))
        return tried[self.last]

    def _bisect(self, img: np.ndarray, near: int | None = None) -> bytes:
        """The lowest quality whose base quantiser is at most the file's (the quantisers fall
        as the quality rises; `near`: among the few around that guess, ~3 encodings instead of
        ~7); then the qualities from it with the same base quantiser whose encoding of `img`
        has the file's whole header (`qualities`), or else the lowest is `nearest`. Returns the
        lowest one's encoding."""
        want = self.header[-2]
        lo, hi = (0, 100) if near is None else (max(0, near - 2), min(100, near + 3))
        tried: dict[int, bytes] = {}
        while lo < hi:
            mid = (lo + hi) // 2
            tried[mid] = self._encode(img, mid)
            if vp8_header(tried[mid])[-2] > want:
                lo = mid + 1
            else:
                hi = mid
        for q in range(lo, 101):
            data = tried.get(q) or self._encode(img, q)
            tried[q] = data
            header = vp8_header(data)
            if header == self.header:
                self.qualities.append(q)
            elif header[-2] != want:
                break
        if not self.qualities:  # (around a guess: it stays, it does not drift with drawings)
            self.nearest = lo if near is None else near
            return self._closest(tried, want) or self._encode(img, self.nearest)
        if self.target is not None:  # (a drawing an accessory off may share the header of a
            # quality next to the file's: 8648 at 100 px q70, without its Mole, has q69's only)
            first, last = self.qualities[0], self.qualities[-1]
            self.qualities += [q for q in (first - 1, last + 1) if 0 <= q <= 100]
        return tried[self.qualities[0]]
