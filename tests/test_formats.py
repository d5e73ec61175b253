"""The collection's language (issue 10): the head, the on-chain string, OpenSea metadata, which
original an image is, and how rare its answer is — through the predictor and the CLI."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from punktraits import data as D
from punktraits.cli import cli
from punktraits.collection import onchain, rarity
from punktraits.predict import Predictor
from punktraits.sprites import heads_of, sprites_for

BLUE = (0x63, 0x85, 0x96)


@pytest.fixture(scope="module")
def model(data_dir):
    return Predictor(data_dir=data_dir)


@pytest.fixture(scope="module")
def every_punk(model, punks):
    return model.predict_punks(punks.images)


def official(punks, i, hidden: bool = True) -> str:
    acc = [a for a in punks.layers[i]
           if hidden or not punks.hidden[i, D.TRAIT_INDEX[a]]]  # fmt: skip
    return ", ".join([heads_of(punks)[i]] + acc)


def render(punk: np.ndarray, scale: int, fmt: str = "PNG") -> bytes:
    img = Image.fromarray(punk, "RGBA").resize((24 * scale, 24 * scale), Image.NEAREST)
    bg = Image.new("RGBA", img.size, BLUE + (255,))
    buf = io.BytesIO()
    Image.alpha_composite(bg, img).convert("RGB").save(buf, fmt, quality=85)
    return buf.getvalue()


def test_onchain_string_of_all_10000_equals_punk_attributes_on_what_is_visible(punks, every_punk):
    got = [onchain(p.head, p.accessories) for p in every_punk]
    wrong = [i for i in range(10_000) if got[i] != official(punks, i, hidden=False)]
    assert wrong == []
    with_hidden = [i for i in range(10_000) if got[i] != official(punks, i)]
    assert len(with_hidden) == 537  # the punks with a painted-over accessory (hidden.csv)
    assert set(with_hidden) == set(np.flatnonzero(punks.hidden.any(1)).tolist())


def test_original_of_all_10000_and_whether_the_answer_agrees(punks, every_punk):
    assert [p.original["id"] for p in every_punk] == list(range(10_000))
    assert all(p.nearest is None for p in every_punk)
    hidden = punks.hidden.any(1)
    assert [p.original["agrees_visible"] for p in every_punk] == [True] * 10_000
    assert [p.original["agrees"] for p in every_punk] == (~hidden).tolist()
    p = every_punk[8348]
    assert p.original["labels"]["onchain"] == (
        "Male 2, Buck Teeth, Mole, Big Beard, Earring, Top Hat, Cigarette, Classic Shades"
    )
    assert p.original["url"].endswith("/8348")


def test_rarity_of_the_answer_is_the_collections(punks, every_punk):
    for i in (0, 8348, 641, 2202):  # punk 0's Earring is painted over: the answer lacks it
        shown = [a for a in punks.layers[i] if not punks.hidden[i, D.TRAIT_INDEX[a]]]
        want = rarity(heads_of(punks)[i], shown)
        p = every_punk[i]
        assert p.rarity["rarity_tools"] == want["rarity_tools"]
        assert p.rarity["openrarity"] == want["openrarity"]
    assert every_punk[8348].rarity["openrarity"]["rank"] == 1


def test_originals_at_8x_png_and_jpeg(punks, model):
    ids = list(range(0, 10_000, 97))
    for fmt in ("PNG", "JPEG"):
        preds = model.predict_batch([render(punks.images[i], 8, fmt) for i in ids])
        assert [p.original and p.original["id"] for p in preds] == ids, fmt


def test_new_punks_are_no_original_and_say_the_nearest(punks, model):
    train, _ = D.split(punks.labels, seed=0)
    sprites = sprites_for(punks, train)
    combos = sprites.sample(50, np.random.default_rng(123),
                            exclude=list(zip(heads_of(punks), punks.layers)))  # fmt: skip
    images, _ = sprites.render_many(combos)
    preds = model.predict_punks(images)
    assert all(p.original is None for p in preds)
    assert all(p.nearest["differing_pixels"] > 0 for p in preds)
    assert [p.head for p in preds] == [h for h, _ in combos]
    assert all(p.verified for p in preds)  # the answers draw the images pixel for pixel


def test_cli_onchain_and_opensea(punks, tmp_path):
    path = tmp_path / "8348.png"
    path.write_bytes(render(punks.images[8348], 8))
    r = CliRunner().invoke(cli, ["predict", str(path), "--format", "onchain"])
    assert r.exit_code == 0, r.output
    want = official(punks, 8348, hidden=False)
    assert r.stdout == want + "\n"
    r = CliRunner().invoke(cli, ["predict", str(path), "--format", "opensea"])
    meta = json.loads(r.stdout)
    assert meta["name"] == "CryptoPunk #8348"
    attrs = [(a["trait_type"], a["value"]) for a in meta["attributes"]]
    assert attrs[0] == ("Type", "Male") and ("Attribute", "Top Hat") in attrs
    count = dict(attrs)["Attribute Count"]
    assert count == str(len(want.split(", ")) - 1)


def test_cli_rarity_by_id_traits_and_image(punks, data_dir, tmp_path):
    run = CliRunner()
    r = run.invoke(cli, ["rarity", "--id", "8348", "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert (
        lines[0]
        == "Male 2, Buck Teeth, Mole, Big Beard, Earring, Top Hat, Cigarette, Classic Shades"
    )
    assert "rank 1 of 10,000" in lines[1] and "rank 1 of 10,000" in lines[2]
    want = rarity("Male 2", ["Top Hat", "Earring"])
    r = run.invoke(
        cli, ["rarity", "--traits", "Male 2, Top Hat, Earring", "--data-dir", str(data_dir)]
    )
    assert r.stdout.splitlines()[0] == "Male 2, Earring, Top Hat"
    assert f"rank {want['openrarity']['rank']:,} of 10,000" in r.stdout.splitlines()[2]
    path = tmp_path / "p.png"
    path.write_bytes(render(punks.images[8348], 8))
    r = run.invoke(cli, ["rarity", str(path), "--data-dir", str(data_dir)])
    assert r.exit_code == 0 and "rank 1 of 10,000" in r.stdout.splitlines()[2]
    r = run.invoke(cli, ["rarity", "--id", "1", "--traits", "Alien", "--data-dir", str(data_dir)])
    assert r.exit_code == 2 and "give one of PATH, --id N or --traits" in r.output
