"""Shared fixtures. Real-data tests read the folder named by PUNKTRAITS_DATA; they skip when it is
unset, except under PUNKTRAITS_REQUIRE_DATA=1 (CI), where a missing folder is a failure."""

from __future__ import annotations

import io
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from punktraits import data as D
from punktraits.normalize import collection_palette


def encode(im, fmt="PNG", **kw) -> bytes:
    """A Pillow image as the bytes of a file of `fmt` (the tests' renders)."""
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def cut(punk: np.ndarray, size: int, phase: int, bg=(0x63, 0x85, 0x96)) -> Image.Image:
    """A nearest upscale whose cell i starts at ceil((i * size - phase) / 24): Pillow's cuts
    are one of these 24 phases; Chromium's `image-rendering: pixelated` (screenshotted) cuts at
    another (benchmarks/browser.py)."""
    edges = -(-(np.arange(25) * size - phase) // 24)
    src = np.searchsorted(edges, np.arange(size), side="right") - 1
    im = Image.fromarray(np.ascontiguousarray(punk[src][:, src]), "RGBA")
    canvas = Image.new("RGBA", im.size, bg + (255,))
    canvas.alpha_composite(im)
    return canvas.convert("RGB")


# Under pytest-xdist (the README's `-n 2`: two processes on two cores) each process trains and
# predicts on one torch thread: two processes of two threads each ran the real training at half
# its speed alone (808 s vs 432 s).
XDIST = "PYTEST_XDIST_WORKER" in os.environ
THREADS = 1 if XDIST else 2


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    if XDIST:
        torch.set_num_threads(THREADS)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's cache; never download from the internet in tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
    monkeypatch.setenv(D.ENV_MIRROR, "http://127.0.0.1:9")  # a closed port: no network


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = os.environ.get(D.ENV_DATA)
    required = os.environ.get("PUNKTRAITS_REQUIRE_DATA") == "1"
    if not path or not (Path(path) / "punks.png").exists():
        msg = f"real-data test: set {D.ENV_DATA} to the verified data folder (got {path!r})"
        if required:
            pytest.fail(msg)
        pytest.skip(msg)
    return Path(path)


@pytest.fixture(scope="session")
def punks(data_dir) -> D.Punks:
    return D.load(data_dir)


@pytest.fixture
def http_server():
    """Serve {path: bytes} on 127.0.0.1; a value (bytes, n) sends only n bytes then hangs up."""
    files: dict[str, object] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            cut = None
            if isinstance(body, tuple):
                body, cut = body
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:cut] if cut is not None else body)
            self.wfile.flush()
            if cut is not None:
                self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium via Playwright (never `playwright install`: the system's chromium).
    Skips when it is missing, except under PUNKTRAITS_REQUIRE_BROWSER=1 (CI)."""
    exe = os.environ.get("PUNKTRAITS_CHROMIUM", "/usr/bin/chromium")
    required = os.environ.get("PUNKTRAITS_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not Path(exe).exists():
        msg = f"browser test: needs playwright and chromium at {exe} (apt-get install chromium)"
        if required:
            pytest.fail(msg)
        pytest.skip(msg)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        yield b
        b.close()


class PageLog:
    """What a page did: console errors, failed requests, and every URL it asked for."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("request", lambda r: self.requests.append(r.url))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.log = PageLog(pg)
    yield pg
    context.close()


@pytest.fixture(scope="session")
def palette(punks):
    """The collection's colours and their pixel counts, for normalising."""
    return collection_palette(punks.images)
