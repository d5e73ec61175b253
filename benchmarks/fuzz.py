"""Fuzz the image reader: seeded random mutations of real punk images, through predict.

    python benchmarks/fuzz.py --files 2000 --seed 0

Each file is a real punk (several ids and scales) encoded as PNG, JPEG, WebP, GIF or BMP, then
mutated: bit flips, byte overwrites, truncations, insertions, deletions, repeated spans, splices
of two files, and format-aware edits (PNG chunks re-checksummed so the decoder reads them: IHDR
sizes, depths and colour types, IDAT bits; JPEG frame sizes, markers, entropy data; WebP and GIF
headers). Every file goes through load_model().to_punk and predict: an ImageError (HTTP 413 / 415
/ 422) is a refusal, anything else raised is a crash. Records per file the time and the peak
memory (Python and NumPy via tracemalloc; the process RSS sampled every 2 ms, above the RSS
before the file), and prints the outcomes, the slowest files, and a table for docs/RESULTS.md.
tests/test_hostile.py runs the same mutations, fewer, through predict_batch and the web API.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import struct
import threading
import time
import tracemalloc
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

BLUE = (0x63, 0x85, 0x96)
FORMATS = ("png", "png-rgb", "jpeg", "webp", "webp-lossy", "gif", "bmp")


# --- real images ------------------------------------------------------------------------------


def encode(punk: np.ndarray, fmt: str, zoom: int) -> bytes:
    im = Image.fromarray(punk, "RGBA").resize((24 * zoom, 24 * zoom), Image.NEAREST)
    if fmt != "png" and fmt != "webp":  # formats without alpha here: flatten on the blue
        flat = Image.new("RGB", im.size, BLUE)
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    buf = io.BytesIO()
    kw = {
        "png": dict(format="PNG"), "png-rgb": dict(format="PNG"),
        "jpeg": dict(format="JPEG", quality=90), "webp": dict(format="WEBP", lossless=True),
        "webp-lossy": dict(format="WEBP", quality=80), "gif": dict(format="GIF"),
        "bmp": dict(format="BMP"),
    }[fmt]  # fmt: skip
    im.save(buf, **kw)
    return buf.getvalue()


def originals(punks: np.ndarray, rng: np.random.Generator, n: int) -> list[tuple[str, bytes]]:
    """n real images: random punks, formats and scales (x1..x8)."""
    out = []
    for k in range(n):
        i = int(rng.integers(len(punks)))
        fmt = FORMATS[k % len(FORMATS)]
        zoom = int(rng.choice([1, 2, 3, 4, 6, 8]))
        out.append((f"{i}-x{zoom}.{fmt}", encode(punks[i], fmt, zoom)))
    return out


# --- mutations --------------------------------------------------------------------------------


def _chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """PNG chunks: (offset, type, length)."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((pos, data[pos + 4 : pos + 8], length))
        pos += 12 + length
    return out


def _rechunk(data: bytearray, pos: int) -> None:
    """Recompute the CRC of the PNG chunk at `pos` after an edit inside it."""
    (length,) = struct.unpack(">I", data[pos : pos + 4])
    end = pos + 8 + length
    if end + 4 <= len(data):
        data[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(data[pos + 4 : end])) & 0xFFFFFFFF)


def _size(rng) -> int:
    return int(rng.choice([0, 1, 23, 24, 25, 192, 4096, 65535, 2**31 - 1, 2**32 - 1,
                           int(rng.integers(1, 100_000))]))  # fmt: skip


def png_edit(data: bytes, rng) -> tuple[str, bytes]:
    chunks = _chunks(data)
    if not chunks:
        return "png-none", data
    d = bytearray(data)
    what = rng.integers(6)
    pos, kind, length = chunks[int(rng.integers(len(chunks)))]
    if what == 0:  # IHDR width / height
        ihdr = chunks[0][0]
        field = int(rng.integers(2))
        d[ihdr + 8 + 4 * field : ihdr + 12 + 4 * field] = struct.pack(">I", _size(rng) % 2**32)
        _rechunk(d, ihdr)
        return "png-ihdr-size", bytes(d)
    if what == 1:  # IHDR bit depth / colour type / interlace
        ihdr = chunks[0][0]
        d[ihdr + 16 + int(rng.integers(5))] = int(rng.integers(256))
        _rechunk(d, ihdr)
        return "png-ihdr-kind", bytes(d)
    if what == 2 and length:  # bits inside a chunk, checksum fixed: the decoder reads them
        for _ in range(int(rng.integers(1, 9))):
            j = pos + 8 + int(rng.integers(length))
            d[j] ^= 1 << int(rng.integers(8))
        _rechunk(d, pos)
        return f"png-{kind.decode('latin-1').lower()}-bits", bytes(d)
    if what == 3:  # a chunk's length field
        d[pos : pos + 4] = struct.pack(">I", _size(rng) % 2**32)
        return "png-length", bytes(d)
    if what == 4:  # drop a chunk
        return f"png-drop-{kind.decode('latin-1').lower()}", bytes(d[:pos] + d[pos + 12 + length :])
    return "png-repeat-chunk", bytes(d[: pos + 12 + length] + d[pos : pos + 12 + length]
                                     + d[pos + 12 + length :])  # fmt: skip


def jpeg_edit(data: bytes, rng) -> tuple[str, bytes]:
    d = bytearray(data)
    what = rng.integers(4)
    sof = max(d.find(b"\xff\xc0"), d.find(b"\xff\xc2"))
    sos = d.find(b"\xff\xda")
    if what == 0 and sof > 0:
        d[sof + 5 + 2 * int(rng.integers(2)) : sof + 7 + 2 * int(rng.integers(2))] = struct.pack(
            ">H", _size(rng) % 65536
        )
        return "jpeg-sof-size", bytes(d[: len(data)])
    if what == 1 and sof > 0:  # components, precision, sampling
        d[sof + 4 + int(rng.integers(6))] = int(rng.integers(256))
        return "jpeg-sof-kind", bytes(d)
    if what == 2 and sos > 0:  # entropy-coded data
        for _ in range(int(rng.integers(1, 17))):
            j = int(rng.integers(sos + 2, len(d)))
            d[j] ^= 1 << int(rng.integers(8))
        return "jpeg-scan-bits", bytes(d)
    markers = [i for i in range(len(d) - 1) if d[i] == 0xFF and d[i + 1] not in (0, 0xFF)]
    i = markers[int(rng.integers(len(markers)))] if markers else 2
    d[i + 1] = int(rng.integers(0xC0, 0x100))
    return "jpeg-marker", bytes(d)


def riff_edit(data: bytes, rng) -> tuple[str, bytes]:
    d = bytearray(data)
    if rng.integers(2) == 0:
        d[4:8] = struct.pack("<I", _size(rng) % 2**32)
        return "webp-riff-size", bytes(d)
    j = int(rng.integers(12, min(len(d), 40)))
    d[j] = int(rng.integers(256))
    return "webp-header", bytes(d)


def gif_edit(data: bytes, rng) -> tuple[str, bytes]:
    d = bytearray(data)
    what = rng.integers(3)
    if what == 0:
        d[6 + 2 * int(rng.integers(2)) : 8 + 2 * int(rng.integers(2))] = struct.pack(
            "<H", _size(rng) % 65536
        )
        return "gif-screen-size", bytes(d[: len(data)])
    desc = d.find(b"\x2c")
    if what == 1 and desc > 0:
        j = desc + 1 + int(rng.integers(8))
        d[j : j + 2] = struct.pack("<H", _size(rng) % 65536)
        return "gif-frame-size", bytes(d[: len(data)])
    if desc > 0 and desc + 10 < len(d):
        d[desc + 10] = int(rng.integers(256))  # LZW minimum code size
        return "gif-lzw", bytes(d)
    return "gif-none", bytes(d)


def mutate(data: bytes, other: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One seeded random mutation of `data` (`other`: a second file, for splices)."""
    n = len(data)
    what = int(rng.integers(9))
    if what == 0:
        d = bytearray(data)
        for _ in range(int(rng.integers(1, 17))):
            j = int(rng.integers(n))
            d[j] ^= 1 << int(rng.integers(8))
        return "bit-flips", bytes(d)
    if what == 1:
        d = bytearray(data)
        for _ in range(int(rng.integers(1, 9))):
            d[int(rng.integers(n))] = int(rng.integers(256))
        return "bytes", bytes(d)
    if what == 2:
        return "truncated", data[: int(rng.integers(n))]
    if what == 3:
        j = int(rng.integers(n))
        return "inserted", data[:j] + rng.bytes(int(rng.integers(1, 65))) + data[j:]
    if what == 4:
        j = int(rng.integers(n))
        return "deleted", data[:j] + data[j + int(rng.integers(1, 257)) :]
    if what == 5:
        j = int(rng.integers(n))
        span = data[j : j + int(rng.integers(1, 1025))]
        return "repeated", data[:j] + span * int(rng.integers(2, 9)) + data[j:]
    if what == 6:
        return "spliced", data[: int(rng.integers(n))] + other[int(rng.integers(len(other))) :]
    if data.startswith(b"\x89PNG"):
        return png_edit(data, rng)
    if data.startswith(b"\xff\xd8"):
        return jpeg_edit(data, rng)
    if data.startswith(b"RIFF"):
        return riff_edit(data, rng)
    if data.startswith(b"GIF"):
        return gif_edit(data, rng)
    d = bytearray(data)  # BMP: its header's sizes
    j = int(rng.integers(2, min(54, n)))
    d[j] = int(rng.integers(256))
    return "bmp-header", bytes(d)


def corpus(punks: np.ndarray, n: int, seed: int) -> list[tuple[str, str, bytes]]:
    """n mutated files: (name, mutation, bytes), the same for the same seed."""
    rng = np.random.default_rng(seed)
    base = originals(punks, rng, max(8, n // 10))
    out = []
    for k in range(n):
        name, data = base[k % len(base)]
        _, other = base[int(rng.integers(len(base)))]
        what, body = mutate(data, other, rng)
        out.append((f"{k:05d}-{what}-{name}", what, body))
    return out


# --- the run ----------------------------------------------------------------------------------


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    from punktraits import data as D
    from punktraits.errors import ImageError
    from punktraits.predict import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--json", default=None, help="also write every file's outcome here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    punks = D.load(args.data_dir, progress=False).images
    model = load_model()
    files = corpus(punks, args.files, args.seed)
    print(f"# {platform.node()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, "
          f"{len(files)} files, seed {args.seed}, torch threads {args.threads}")  # fmt: skip

    peak = [0]
    sampling = threading.Event()

    def sampler():
        while True:
            sampling.wait()
            peak[0] = max(peak[0], rss_kib())
            time.sleep(0.002)

    threading.Thread(target=sampler, daemon=True).start()
    tracemalloc.start()
    rows = []
    for name, what, body in files:
        tracemalloc.reset_peak()
        before = rss_kib()
        peak[0] = before
        sampling.set()
        t0 = time.perf_counter()
        try:
            p = model.predict(body, name)
            outcome, detail = "answered", p.type
        except ImageError as e:
            outcome, detail = f"refused {e.status}", str(e)[len(name) + 2 :]
        except Exception as e:  # noqa: BLE001  what the fuzz looks for
            outcome, detail = "CRASH", f"{type(e).__name__}: {e}"
        seconds = time.perf_counter() - t0
        sampling.clear()
        traced = tracemalloc.get_traced_memory()[1]
        rows.append({"file": name, "mutation": what, "bytes": len(body), "outcome": outcome,
                     "detail": detail[:200], "seconds": round(seconds, 4),
                     "traced_mib": round(traced / 2**20, 2),
                     "rss_above_mib": round(max(peak[0] - before, 0) / 1024, 2)})  # fmt: skip
        if outcome == "CRASH":
            print("CRASH", name, detail[:300], flush=True)
    tracemalloc.stop()

    secs = np.array([r["seconds"] for r in rows])
    traced = np.array([r["traced_mib"] for r in rows])
    above = np.array([r["rss_above_mib"] for r in rows])
    outcomes = Counter(r["outcome"] for r in rows)
    hwm = next(int(x.split()[1]) for x in Path("/proc/self/status").read_text().splitlines()
               if x.startswith("VmHWM:"))  # fmt: skip
    print("outcomes:", dict(sorted(outcomes.items())))
    print("refusal reasons (first words):", Counter(
        " ".join(r["detail"].split()[:4]) for r in rows if r["outcome"].startswith("refused")
    ).most_common(8))  # fmt: skip
    print("slowest:", [(r["file"], r["seconds"], r["outcome"])
                       for r in sorted(rows, key=lambda r: -r["seconds"])[:5]])  # fmt: skip
    print(
        "\n| files | answered | refused (413 / 415 / 422) | crashes | time per file p50 / p99 "
        "/ max | memory per file p99 / max (traced; RSS above start) | process peak RSS |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {len(rows):,} | {outcomes['answered']:,} | {outcomes['refused 413']:,} / "
        f"{outcomes['refused 415']:,} / {outcomes['refused 422']:,} | {outcomes['CRASH']} "
        f"| {np.percentile(secs, 50) * 1000:.1f} / {np.percentile(secs, 99) * 1000:.0f} / "
        f"{secs.max() * 1000:.0f} ms | {np.percentile(traced, 99):.1f} / {traced.max():.1f} MiB; "
        f"{np.percentile(above, 99):.1f} / {above.max():.1f} MiB | {hwm / 1024:.0f} MiB |"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
