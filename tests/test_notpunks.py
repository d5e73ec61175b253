"""The not-a-punk set of benchmarks/notpunks.py: deterministic, big and varied enough, never a real
punk; and (once drawing verification lands, issue 8) refused by predict."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

spec = importlib.util.spec_from_file_location(
    "notpunks", Path(__file__).parents[1] / "benchmarks" / "notpunks.py"
)
notpunks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(notpunks)
BLUE = notpunks.BLUE + (255,)


def digest(folder: Path) -> str:
    """sha256 over the manifest and every file it names, in its order."""
    h = hashlib.sha256((folder / "manifest.jsonl").read_bytes())
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        h.update((folder / json.loads(line)["file"]).read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def made(tmp_path_factory, punks):
    out = tmp_path_factory.mktemp("notpunks")
    return out, notpunks.make_set(out, punks, seed=0)


def test_same_seed_same_bytes(made, punks, tmp_path):
    out, rows = made
    again = notpunks.make_set(tmp_path / "again", punks, seed=0)
    assert again == rows
    assert digest(tmp_path / "again") == digest(out)
    notpunks.make_set(tmp_path / "other", punks, seed=1)
    assert digest(tmp_path / "other") != digest(out)


def test_big_and_varied(made):
    out, rows = made
    kinds = {r["kind"] for r in rows}
    assert len(rows) >= 300 and len(kinds) >= 15
    assert all(sum(r["kind"] == k for r in rows) >= 8 for k in kinds)
    assert {r["format"].split()[0] for r in rows} == {"PNG", "JPEG", "WebP"}
    sides = [max(r["size"]) for r in rows]
    assert min(sides) == 24 and max(sides) == 1024
    assert 5 <= sum(r["size"][0] != r["size"][1] for r in rows) <= len(rows) // 10
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [r["file"] for r in rows] + ["manifest.jsonl"]
    )
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert lines == rows


def on_blue(im: Image.Image) -> bytes:
    """RGB bytes of an image as it shows on the site blue."""
    if im.mode != "RGBA":
        return im.convert("RGB").tobytes()
    return Image.alpha_composite(Image.new("RGBA", im.size, BLUE), im).convert("RGB").tobytes()


def cells(path: Path) -> Image.Image | None:
    """The 24x24 cell centres of a square image, or None when it is not square."""
    im = Image.open(path)
    im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
    w, h = im.size
    if w != h:
        return None
    at = ((np.arange(24) + 0.5) * w / 24).astype(int)
    return Image.fromarray(np.asarray(im)[at][:, at])


def test_never_a_real_punk(made, punks, tmp_path):
    """No file is byte-equal to a real render, and no lossless square one shows a real punk (or a
    mirrored one) in its 24x24 cells. Lossy files carry noise: make_set checks their pixel art
    before encoding."""
    out, rows = made
    shown = {on_blue(Image.fromarray(p, "RGBA")) for p in punks.images}
    shown |= {
        on_blue(Image.fromarray(np.ascontiguousarray(p[:, ::-1]), "RGBA")) for p in punks.images
    }
    renders = notpunks.make_real(tmp_path / "real", punks, range(0, len(punks), 97))
    real_bytes = {(tmp_path / "real" / r["file"]).read_bytes() for r in renders}
    checked = 0
    for r in rows:
        data = (out / r["file"]).read_bytes()
        assert data not in real_bytes, r
        if r["format"] in ("PNG", "WebP lossless") and (c := cells(out / r["file"])) is not None:
            checked += 1
            assert on_blue(c) not in shown, r
    assert checked >= 150
    mild = notpunks.make_mild(tmp_path / "mild", punks)
    assert len(mild) == 3 * len(notpunks.MILD_EDITS)
    for r in mild:
        c = np.asarray(cells(tmp_path / "mild" / r["file"]))
        i = int(r["how"].split()[1].rstrip(":"))
        real = np.frombuffer(on_blue(Image.fromarray(punks.images[i], "RGBA")), np.uint8)
        real = real.reshape(24, 24, 3)
        assert 1 <= (c != real).any(-1).sum() <= 3, r


# The kinds most like a punk get a second image in the end-to-end sample.
HARDEST = ("docs_figure", "character", "sprite", "punk_blend", "punk_block", "punk_mosaic")


def test_predict_refuses_not_punks(made):
    """30 images (the first of every kind, the second of the HARDEST kinds): all refused."""
    from punktraits import load_model

    out, rows = made
    n = lambda r: int(r["file"].rsplit("-", 1)[1].split(".")[0])  # noqa: E731  its index in its kind
    sample = [r for r in rows if n(r) == 0 or (n(r) == 1 and r["kind"] in HARDEST)]
    assert len(sample) == 30
    preds = load_model().predict_batch([out / r["file"] for r in sample])
    answered = [
        f"{r['kind']}: {r['how']} -> {p.type}" for r, p in zip(sample, preds) if not p.error
    ]
    assert not answered, f"{len(answered)} of {len(sample)} answered:\n" + "\n".join(answered)


def test_the_report_reads_how_far_a_refusal_re_encoded():
    """`reencoded` reads the distance a small lossy not-punk's refusal gives, in both wordings
    `verify.Check.refused` has (weighed by the fit and by re-encoding, or by re-encoding alone)."""
    from punktraits.verify import Check

    fit = {"rms": 40.0, "reading_rms": 10.0, "limit": 1.21, "reencoded": 15.3}
    check = Check(verified=False, head="Male 1", accessories=[], differing=0, unknown=0,
                  tried=1, fit=fit)  # fmt: skip
    assert notpunks.reencoded(check.refused) == 15.3
    check.fit = {**fit, "limit": None, "reencoded": 20.06}
    assert notpunks.reencoded(check.refused) == 20.1
    check.fit = {k: v for k, v in fit.items() if k != "reencoded"}
    assert notpunks.reencoded(check.refused) is None
