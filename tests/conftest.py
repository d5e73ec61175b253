"""Shared fixtures. Real-data tests read the folder named by PUNKTRAITS_DATA; they skip when it is
unset, except under PUNKTRAITS_REQUIRE_DATA=1 (CI), where a missing folder is a failure."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from punktraits import data as D


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
