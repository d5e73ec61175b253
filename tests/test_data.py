"""The data layer: parsing, verification, caching, the split, export, download."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from punktraits import data as D


def tiny_folder(tmp_path, n=30, seed=0):
    punks = D.synthetic(n, seed)
    folder = tmp_path / "tiny"
    D.write_folder(punks, folder, cols=7)
    return punks, folder


def test_synthetic_folder_round_trips(tmp_path):
    punks, folder = tiny_folder(tmp_path)
    loaded = D.load(folder, official=False)
    assert loaded.images.shape == (30, 24, 24, 4)
    np.testing.assert_array_equal(loaded.images, punks.images)
    np.testing.assert_array_equal(loaded.labels, punks.labels)
    assert loaded.hidden is None and loaded.visible is None
    assert (loaded.labels[:, :5].sum(1) == 1).all()


def test_crop_order_is_row_major():
    sheet = np.zeros((3 * 24, 4 * 24, 4), np.uint8)
    for r in range(3):
        for c in range(4):
            sheet[r * 24 : (r + 1) * 24, c * 24 : (c + 1) * 24, 0] = r * 4 + c
    tiles = D.crop_sheet(sheet, 12)
    assert tiles.shape == (12, 24, 24, 4)
    assert tiles[:, 5, 7, 0].tolist() == list(range(12))


def test_official_mode_rejects_a_synthetic_sheet(tmp_path):
    _, folder = tiny_folder(tmp_path)
    with pytest.raises(D.DataError, match="not the official imageHash"):
        D.load(folder)


def edit_traits(folder, fn):
    path = folder / "traits.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda ls: ls[:5] + ls[6:] + [ls[1]], "duplicate row for punk 0"),
        (lambda ls: [ls[0]] + ls[2:] + ["-1," + ls[1].split(",", 1)[1]], "outside 0..29"),
        (lambda ls: [ls[0], "0,Robot,,,0"] + ls[2:], "unknown type 'Robot'"),
        (
            lambda ls: [ls[0], "0,Male,Male 1,Laser Eyes,1"] + ls[2:],
            "unknown accessory 'Laser Eyes'",
        ),
        (lambda ls: [ls[0], "0,Male,Male 1,Mole / Smile,3"] + ls[2:], "count '3' does not match"),
        (lambda ls: ["id,kind,skin,accessories,count"] + ls[1:], "header is"),
    ],
)
def test_bad_traits_csv_is_refused_and_nothing_is_cached(tmp_path, edit, message):
    _, folder = tiny_folder(tmp_path)
    edit_traits(folder, edit)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(D.DataError, match=message):
        D.load(folder, official=False)
    assert sorted(p.name for p in folder.iterdir()) == before


def test_missing_id_is_reported(tmp_path):
    _, folder = tiny_folder(tmp_path)
    edit_traits(folder, lambda ls: ls[:4] + ls[5:])
    with pytest.raises(D.DataError, match=r"no row for punk id\(s\) \[3\]"):
        D.load(folder, official=False)


def test_sheet_too_small_for_the_ids(tmp_path):
    _, folder = tiny_folder(tmp_path)
    Image.new("RGBA", (48, 48)).save(folder / "punks.png")
    with pytest.raises(D.DataError, match="not a grid of 30 24x24 tiles"):
        D.load(folder, official=False)


def test_missing_folder_names_the_files_and_the_option(tmp_path):
    with pytest.raises(D.DataError, match=r"has no punks.png or traits.csv.*--data-dir"):
        D.load(tmp_path / "empty")


def test_split_is_seeded_stratified_and_exact():
    labels = D.synthetic(500, seed=3).labels
    train, test = D.split(labels, n_test=100, seed=1)
    assert len(train) == 400 and len(test) == 100
    assert np.intersect1d(train, test).size == 0 and len(np.union1d(train, test)) == 500
    counts = labels.sum(0)
    both = counts >= 2
    assert (labels[test].sum(0)[both] >= 1).all() and (labels[train].sum(0)[both] >= 1).all()
    again, _ = D.split(labels, n_test=100, seed=1)
    other, _ = D.split(labels, n_test=100, seed=2)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)


def test_converter_maps_tones_and_types():
    text = (
        "id, type, gender, skin tone, count, accessories\r\n"
        "0, Human, Female, Medium, 2, Green Eye Shadow / Earring\r\n"
        "1, Zombie, Male, , 0, \r\n"
    )
    assert D.convert_attributes(text).splitlines() == [
        "id,type,skin,accessories,count",
        "0,Female,Female 2,Green Eye Shadow / Earring,2",
        "1,Zombie,,,0",
    ]


# --- download, against a local HTTP server ----------------------------------------------------


def serve_sources(files, shared):
    files["punks.png"] = (shared / "punks.png").read_bytes()
    files["cryptopunks.csv"] = (shared / "sources" / "cryptopunks.csv").read_bytes()


def test_download_fills_the_cache_and_converts(tmp_path, http_server, data_dir, monkeypatch):
    url, files = http_server
    serve_sources(files, data_dir)
    monkeypatch.setenv(D.ENV_MIRROR, url)
    cache = tmp_path / "cache"
    D.download_missing(cache, progress=False)
    assert sorted(p.name for p in cache.iterdir()) == ["punks.png", "traits.csv"]
    assert D.sha256_file(cache / "punks.png") == D.PUNKS_PNG_SHA256
    ours = D.parse_traits(cache / "traits.csv", 10_000)
    official = D.parse_traits(data_dir / "traits.csv", 10_000)
    np.testing.assert_array_equal(ours[0], official[0])  # same label sets for all 10,000
    assert ours[1] == official[1]  # same skins


def test_corrupt_download_is_rejected_and_nothing_kept(
    tmp_path, http_server, data_dir, monkeypatch
):
    url, files = http_server
    serve_sources(files, data_dir)
    png = bytearray(files["punks.png"])
    png[1000] ^= 0xFF
    files["punks.png"] = bytes(png)
    monkeypatch.setenv(D.ENV_MIRROR, url)
    cache = tmp_path / "cache"
    with pytest.raises(D.DataError, match="punks.png from .* has the wrong sha256"):
        D.download_missing(cache, progress=False)
    assert list(cache.rglob("*")) == []


def test_interrupted_download_leaves_nothing(tmp_path, http_server, data_dir, monkeypatch):
    url, files = http_server
    serve_sources(files, data_dir)
    files["punks.png"] = (files["punks.png"], 300_000)
    monkeypatch.setenv(D.ENV_MIRROR, url)
    cache = tmp_path / "cache"
    with pytest.raises(D.DataError, match="could not be downloaded"):
        D.download_missing(cache, progress=False)
    assert list(cache.rglob("*")) == []


def test_load_from_the_cache_downloads_then_verifies(tmp_path, http_server, data_dir, monkeypatch):
    url, files = http_server
    serve_sources(files, data_dir)
    monkeypatch.setenv(D.ENV_MIRROR, url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(D.ENV_DATA, raising=False)
    punks = D.load(progress=False)
    assert punks.data_dir == tmp_path / "xdg" / "punktraits" / "data"
    assert len(punks) == 10_000 and punks.hidden is None
    assert list(punks.data_dir.glob("crops-*.npy"))  # decoded once, cached next to the data


def test_no_network_error_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(D.ENV_DATA, raising=False)
    with pytest.raises(D.DataError) as e:
        D.load(progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert "punks.png and traits.csv" in msg and "--data-dir" in msg


# --- the real data ----------------------------------------------------------------------------


def test_real_counts_and_hashes(punks):
    assert punks.images.shape == (10_000, 24, 24, 4) and punks.images.dtype == np.uint8
    assert punks.labels.shape == (10_000, 92)
    assert punks.sha256["punks.png"] == D.PUNKS_PNG_SHA256
    counts = dict(zip(D.TRAITS, punks.labels.sum(0).tolist()))
    assert [counts[t] for t in D.TYPES] == [9, 24, 88, 3840, 6039]
    assert counts["Earring"] == 2459 and counts["Beanie"] == 44 and counts["Rosy Cheeks"] == 128
    assert (punks.labels[:, :5].sum(1) == 1).all()
    s = punks.summary()
    assert s["accessory_counts"] == [8, 333, 3560, 4501, 1420, 166, 11, 1]
    assert s["hidden"] == 543 and int(punks.hidden.any(1).sum()) == 537
    assert (
        punks.hidden[0, D.TRAIT_INDEX["Earring"]] and not punks.visible[0, D.TRAIT_INDEX["Earring"]]
    )


def test_real_crops_are_distinct_and_in_place(punks, data_dir):
    sheet = np.asarray(Image.open(data_dir / "punks.png"))
    np.testing.assert_array_equal(punks.images[1234], sheet[12 * 24 : 13 * 24, 34 * 24 : 35 * 24])
    assert len(np.unique(punks.images.reshape(10_000, -1), axis=0)) == 10_000
    assert set(np.unique(punks.images[..., 3]).tolist()) == {0, 128, 255}


def test_real_converter_matches_traits_csv(data_dir, tmp_path):
    text = (data_dir / "sources" / "cryptopunks.csv").read_text("utf-8")
    (tmp_path / "traits.csv").write_text(D.convert_attributes(text))
    ours, skins = D.parse_traits(tmp_path / "traits.csv", 10_000)
    official, official_skins = D.parse_traits(data_dir / "traits.csv", 10_000)
    np.testing.assert_array_equal(ours, official)
    assert skins == official_skins


def test_real_split(punks):
    train, test = D.split(punks.labels, seed=0)
    assert (len(train), len(test)) == (8000, 2000)
    counts, in_test = punks.labels.sum(0), punks.labels[test].sum(0)
    assert (in_test >= 1).all() and (punks.labels[train].sum(0) >= 1).all()
    assert in_test[D.TRAIT_INDEX["Alien"]] == 2  # round(0.2 * 9); the paper's shuffle gave 0 or 1
    assert np.abs(in_test / counts - 0.2).max() < 0.05


def test_real_data_is_read_only_for_us(data_dir, punks):
    assert sorted(p.name for p in data_dir.iterdir() if not p.name.startswith(".")) == sorted(
        ["README.md", "SHA256SUMS", "hidden.csv", "punks.png", "sources", "traits.csv"]
    )


def test_cli_data_and_export(tmp_path, data_dir):
    from click.testing import CliRunner

    from punktraits.cli import cli

    out = tmp_path / "export"
    result = CliRunner().invoke(cli, ["data", "--data-dir", str(data_dir), "--export", str(out)])
    assert result.exit_code == 0, result.output
    assert "punks         10,000" in result.output
    assert "8 / 333 / 3560 / 4501 / 1420 / 166 / 11 / 1" in result.output
    assert "hidden labels 543 in 537 punks" in result.output
    assert len(list((out / "images").glob("*.png"))) == 10_000
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "images" / "8348.png")), D.load(data_dir).images[8348]
    )
    rows = list(csv.reader(open(out / "traits_dummies.csv")))
    assert len(rows) == 10_001 and len(rows[0]) == 93 and rows[0][:3] == ["id", "Alien", "Ape"]
    assert sum(int(v) for v in rows[8349][1:]) == 8  # Male + 7 accessories
    assert Image.open(out / "contact_sheet.png").size == (1920, 1920)
    shutil.rmtree(out)
