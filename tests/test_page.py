"""The page's views of an answer: the head, the drawing back, the exact lookup among the
originals, rarity, and several files at once as a table with a CSV download (headless Chromium
against the real server); and the API fields they use (?format=, explain's drawing)."""

from __future__ import annotations

import base64
import csv
import io
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from punktraits.collection import onchain

BLUE = (0x63, 0x85, 0x96)


def png(punk: np.ndarray, zoom: int = 8) -> bytes:
    """A render of a punk as people post them: enlarged, flat on the collection's blue."""
    im = Image.fromarray(punk, "RGBA").resize((24 * zoom, 24 * zoom), Image.NEAREST)
    flat = Image.new("RGB", im.size, BLUE)
    flat.paste(im, mask=im.getchannel("A"))
    buf = io.BytesIO()
    flat.save(buf, format="PNG")
    return buf.getvalue()


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(data_dir):
    from fastapi.testclient import TestClient

    from punktraits.server import create_app

    with TestClient(create_app(data_dir=data_dir, gallery=False)) as c:
        yield c


def post(client, body: bytes, path: str, name: str = "p.png"):
    return client.post(path, files={"image": (name, body, "application/octet-stream")})


def test_predict_format_onchain_and_opensea(client, punks):
    body = png(punks.images[8348])
    r = post(client, body, "/api/predict?format=onchain", "8348.png")
    assert r.status_code == 200
    assert r.json() == {
        "file": "8348.png",
        "onchain": "Male 2, Buck Teeth, Mole, Big Beard, Earring, Top Hat, Cigarette, Classic Shades",
    }
    meta = post(client, body, "/api/predict?format=opensea").json()
    assert meta["name"] == "CryptoPunk #8348"
    assert meta["external_url"].endswith("/8348")
    assert {"trait_type": "Skin Tone", "value": "2"} in meta["attributes"]
    assert {"trait_type": "Attribute Count", "value": "7"} in meta["attributes"]
    default = post(client, body, "/api/predict").json()
    assert default == post(client, body, "/api/predict?format=json").json()
    assert onchain(default["head"], default["accessories"]) == r.json()["onchain"]
    bad = post(client, body, "/api/predict?format=xml")
    assert bad.status_code == 422 and "unknown format" in bad.json()["error"]
    text = post(client, b"hello", "/api/predict?format=onchain", "t.txt")
    assert text.status_code == 415 and text.json()["error"].startswith("t.txt: not an image")


def test_explain_gives_the_drawing_back(client, punks):
    body = post(client, png(punks.images[3636]), "/api/explain").json()
    assert body["prediction"]["verified"] is True
    uri = body["drawn"]
    assert uri.startswith("data:image/png;base64,")
    drawn = np.array(Image.open(io.BytesIO(base64.b64decode(uri.split(",")[1]))).convert("RGBA"))
    assert drawn.shape == (24, 24, 4)
    seen = punks.images[3636][..., 3] > 0
    np.testing.assert_array_equal(drawn[seen], punks.images[3636][seen])
    differ = np.array(body["differ"])
    assert differ.shape == (24, 24) and set(np.unique(differ)) <= {0, 1} and differ.sum() == 0


# --- the page in Chromium ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(data_dir):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "punktraits", "serve", "--port", str(port), "--host", "127.0.0.1",
         "--data-dir", str(data_dir), "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert proc.poll() is None, proc.communicate()
            try:
                urllib.request.urlopen(url + "/api/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not answer in 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def only_the_server(page, url: str, refused: int = 0) -> None:
    """No console errors but Chromium's own line for each of `refused` 4xx answers (an upload
    that is not an image), no failed request, and no request to anything but the server."""
    answered = "Failed to load resource: the server responded with a status of 4"
    assert [e for e in page.log.errors if not e.startswith(answered)] == []
    assert len(page.log.errors) == refused and page.log.failed == []
    elsewhere = [u for u in page.log.requests if not u.startswith((url + "/", "blob:", "data:"))]
    assert elsewhere == []


def test_page_several_files_make_a_table_and_a_csv(server, page, punks, tmp_path):
    url = server
    page.goto(url + "/")
    files = [tmp_path / "zombie.png", tmp_path / "notes.txt", tmp_path / "eight.png"]
    files[0].write_bytes(png(punks.images[3636]))
    files[1].write_text("not a punk")
    files[2].write_bytes(png(punks.images[8348]))
    page.set_input_files("#file", [str(f) for f in files])
    page.wait_for_selector("#csv:enabled")
    rows = page.eval_on_selector_all(
        "#rows tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))"
    )
    assert len(rows) == 3
    assert [r[1] for r in rows] == ["zombie.png", "notes.txt", "eight.png"]
    assert [r[2] for r in rows] == ["Zombie", "", "Male 2"]
    assert [r[5] for r in rows] == ["#3636", "", "#8348"]
    assert [r[4] for r in rows] == ["yes", "", "yes"]
    assert rows[0][7] == rows[2][7] == ""
    assert rows[1][7] == "notes.txt: not an image (expected PNG, JPEG, GIF, WebP or BMP)"
    assert page.locator("#rows img").count() == 2  # thumbnails of the images only
    assert not page.is_visible("#result")

    with page.expect_download() as info:
        page.click("#csv")
    download = info.value
    assert download.suggested_filename == "punktraits.csv"
    table = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert [r["file"] for r in table] == ["zombie.png", "notes.txt", "eight.png"]
    assert [r["head"] for r in table] == ["Zombie", "", "Male 2"]
    assert [r["original"] for r in table] == ["3636", "", "8348"]
    assert set(table[0]["accessories"].split(" / ")) == {"Front Beard Dark", "Earring", "Top Hat"}
    assert table[1]["error"].startswith("notes.txt: not an image")
    assert table[0]["error"] == table[2]["error"] == ""
    assert table[0]["openrarity_rank"].isdigit() and table[0]["verified"] == "yes"
    only_the_server(page, url, refused=1)  # the text file's 415


def test_page_reads_every_punk_of_a_grid_with_its_box(server, page, punks, tmp_path):
    # One file, two punks side by side: the page asks /api/find and makes a row per punk, with
    # its box in the table and the CSV and the punk's square cut out as its thumbnail.
    from PIL import Image

    url = server
    page.goto(url + "/")
    grid = Image.new("RGBA", (192, 96), (0x63, 0x85, 0x96, 255))
    for k, i in enumerate((3636, 8348)):
        tile = Image.fromarray(punks.images[i], "RGBA").resize((96, 96), Image.NEAREST)
        grid.alpha_composite(tile, (96 * k, 0))
    path = tmp_path / "grid.png"
    grid.convert("RGB").save(path)
    page.set_input_files("#file", [str(path)])
    page.wait_for_selector("#csv:enabled")
    rows = page.eval_on_selector_all(
        "#rows tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))"
    )
    assert [r[1] for r in rows] == ["grid.png [0, 0, 96, 96]", "grid.png [96, 0, 96, 96]"]
    assert [r[2] for r in rows] == ["Zombie", "Male 2"]
    assert [r[5] for r in rows] == ["#3636", "#8348"]
    sizes = page.eval_on_selector_all(
        "#rows img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])"
    )
    assert sizes == [[96, 96], [96, 96]]
    with page.expect_download() as info:
        page.click("#csv")
    table = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))
    assert [(r["file"], r["box"], r["original"]) for r in table] == [
        ("grid.png", "0 0 96 96", "3636"), ("grid.png", "96 0 96 96", "8348")]  # fmt: skip
    only_the_server(page, url, refused=1)  # /api/explain's 422: two punks in one picture


def test_page_accepts_several_dropped_files(server, page, punks):
    url = server
    page.goto(url + "/")
    page.evaluate(
        """files => {
            const dt = new DataTransfer();
            for (const [name, bytes] of files)
                dt.items.add(new File([new Uint8Array(bytes)], name, { type: "image/png" }));
            document.querySelector("#drop").dispatchEvent(
                new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
        }""",
        [["a.png", list(png(punks.images[3636], 4))], ["b.png", list(png(punks.images[8348], 4))]],
    )
    page.wait_for_selector("#csv:enabled")
    heads = page.eval_on_selector_all("#rows tr", "trs => trs.map(tr => tr.cells[2].textContent)")
    assert heads == ["Zombie", "Male 2"]
    only_the_server(page, url)


def test_page_one_image_shows_head_drawing_original_and_rarity(server, page, punks, tmp_path):
    url = server
    page.goto(url + "/")
    f = tmp_path / "punk.png"
    f.write_bytes(png(punks.images[8348]))
    page.set_input_files("#file", str(f))
    page.wait_for_selector("#result.shown")
    assert page.inner_text("#type").startswith("Male 2")
    assert page.inner_text("#verified") == "✓ drawn back pixel for pixel"
    original = page.inner_text("#original")
    assert original.startswith("This image is CryptoPunk #8348 (exact pixel match)")
    assert "official labels: Male 2, Buck Teeth" in original
    link = page.get_attribute("#original a", "href")
    assert link == "https://cryptopunks.app/cryptopunks/details/8348"
    assert not page.is_visible("#disagree")
    assert "rarity.tools rank" in page.inner_text("#rarity")
    assert "OpenRarity rank" in page.inner_text("#rarity")
    # the drawing back is on its canvas: some pixel is neither the checkerboard nor empty
    drawn = page.evaluate("""() => {
        const d = document.querySelector('#drawn').getContext('2d').getImageData(0, 0, 144, 144).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 200) n++;
        return n;
    }""")  # fmt: skip
    assert drawn > 0

    # Punk 0's Earring is painted over: the answer differs from the official labels, visibly.
    f0 = tmp_path / "zero.png"
    f0.write_bytes(png(punks.images[0]))
    page.set_input_files("#file", str(f0))
    page.wait_for_selector("#disagree")
    assert page.inner_text("#type").startswith("Female 2")
    text = page.inner_text("#disagree")
    assert "Earring (painted over" in text
    only_the_server(page, url)
