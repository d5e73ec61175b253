"""The web app of `punktraits serve`: drop a punk, see its traits and why.

    GET  /                  the page (static/index.html: plain HTML, CSS and JS, nothing remote)
    GET  /api/health        the model that is loaded, and whether the gallery is available
    POST /api/predict       multipart `image` -> the same object as `predict --format json`
                            (a punk with a caption or a frame: the punk found in it, with its
                            box; a picture of several punks is refused: use /api/find)
    POST /api/find          multipart `image` -> {file, punks: [...]}: every punk in a screenshot,
                            a grid or a sheet, each as /api/predict's object with its `box`
    POST /api/explain       multipart `image` [, `trait`] -> {prediction, punk (PNG data URI),
                            heatmaps}
    GET  /api/gallery       the test punks of the model's split, with their errors
    GET  /api/punks/{id}    one punk of the collection, explained, with its official labels
    GET  /api/punks/{id}.png
    GET  /docs, /openapi.json   FastAPI's own

The model is loaded once, when the app is made: a missing or broken run folder fails there,
before the server listens. Every answer, errors included, is JSON {"error": "one line"} (or the
page, a PNG): HTTP-parser errors (400) and unexpected failures (500, "internal error: <Type>") too.

Hard to break (tests/test_hostile.py):
- Uploads are limited in bytes before they are read (413; 411 without a Content-Length), to one
  file per request (422), in pixels before they are decoded (413, normalize.py); an unreadable
  file is 415 (not an image) or 422 (corrupt, or not a punk).
- Model work is bounded per kind of request: at most `jobs` at once and `queue` waiting; beyond
  that the answer is 503 "busy" with Retry-After, at once, without reading the body. So memory is
  bounded by a few jobs whatever the load, and /api/health (no model work, never in the worker
  threads) answers while the model is busy.
- Only the hosts the server was started for are served (DNS rebinding: a page of another site
  whose name resolves to 127.0.0.1 gets 421), and no request of another origin reaches the API:
  there is no CORS allowance, and browsers say where a request comes from (Sec-Fetch-Site,
  Origin), so a page of another site cannot make the server work for it (403).
- Every answer has nosniff, a Content-Security-Policy (the page's script by hash, nothing
  remote), frame-ancestors none / X-Frame-Options DENY, no referrer, same-origin resources.
- User input echoed in an error (a trait name, a file name) is cut to 80 characters.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import socket
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import h11
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from .data import TYPES
from .errors import DataError, ImageError, PunktraitsError, RunError
from .files import punk_png, punk_uri
from .predict import Prediction, Predictor
from .schema import shown
from .version import __version__

MAX_UPLOAD = 5 * 1024 * 1024  # bytes of a request body
ECHO = 80  # characters of user input that an error message repeats
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
ENV_HOSTS = "PUNKTRAITS_ALLOWED_HOSTS"  # comma-separated extra host names for `serve`
log = logging.getLogger("punktraits.server")


def _json(status: int, obj: dict, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(obj, status_code=status, headers=headers)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    message = " ".join(str(message).split())  # one line
    if len(message) > 400:
        message = message[:399] + "…"
    return _json(status, {"error": message}, headers)


# --- limits on the work a request can ask for -----------------------------------------------


@dataclass
class Kind:
    """One kind of model work: at most `jobs` run at once, at most `queue` more wait, none
    longer than `wait` seconds."""

    name: str
    jobs: int
    queue: int
    wait: float = 10.0
    admitted: int = 0  # requests of this kind between arrival and answer
    slots: dict = field(default_factory=dict, repr=False)  # event loop -> Semaphore(jobs)

    def busy(self) -> JSONResponse:
        return _error(503, f"busy: {self.admitted} {self.name} requests are being answered; "
                           "retry in a second", {"Retry-After": "1"})  # fmt: skip

    async def run(self, fn, *args):
        """fn(*args) in a worker thread once one of the `jobs` slots is free."""
        from starlette.concurrency import run_in_threadpool

        loop = id(asyncio.get_running_loop())  # a semaphore belongs to one event loop
        if loop not in self.slots:
            self.slots = {loop: asyncio.Semaphore(self.jobs)}
        slot = self.slots[loop]
        try:
            await asyncio.wait_for(slot.acquire(), self.wait)
        except asyncio.TimeoutError:
            return self.busy()
        try:
            return await run_in_threadpool(fn, *args)
        finally:
            slot.release()


def _routes_kind(path: str, method: str, kinds: dict[str, Kind]) -> Kind | None:
    if method == "POST" and path == "/api/predict":
        return kinds["predict"]
    if method == "POST" and path == "/api/explain":
        return kinds["explain"]
    if method == "GET" and path.startswith("/api/punks/") and not path.endswith(".png"):
        return kinds["explain"]
    return None


# --- the guard: hosts, origins, admission, headers, JSON for every failure ----------------------


def _host_name(host: str) -> str:
    """The name of a Host header without its port: "[::1]:8000" -> "::1"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware, outermost: everything a request must pass before the app sees it, the
    headers of every answer, and a JSON 500 for any exception the app lets through."""

    def __init__(self, app, kinds: dict[str, Kind], max_bytes: int, hosts: set[str] | None,
                 page_csp: str):  # fmt: skip
        self.app, self.kinds, self.max_bytes, self.hosts = app, kinds, max_bytes, hosts
        self.page_csp = page_csp

    def headers(self, path: str) -> list[tuple[bytes, bytes]]:
        if path == "/":
            csp = self.page_csp
        elif path in ("/docs", "/redoc"):  # FastAPI's pages load their scripts from a CDN
            csp = ("default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
                   "style-src 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
                   "https://fastapi.tiangolo.com https://cdn.redoc.ly; connect-src 'self'; "
                   "worker-src blob:; frame-ancestors 'none'")  # fmt: skip
        else:
            csp = "default-src 'none'; frame-ancestors 'none'"
        return [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                (b"content-security-policy", csp.encode()), (b"referrer-policy", b"no-referrer"),
                (b"cross-origin-resource-policy", b"same-origin")]  # fmt: skip

    def refusal(self, scope) -> JSONResponse | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.hosts is not None and _host_name(host) not in self.hosts:
            allowed = ", ".join(sorted(self.hosts))
            return _error(421, f"this server does not answer for host {shown(host, ECHO)}; it "
                               f"answers for {allowed} (add names with {ENV_HOSTS})")  # fmt: skip
        path, method = scope["path"], scope["method"]
        if path.startswith("/api/"):
            site = headers.get("sec-fetch-site", "").lower()
            origin = headers.get("origin")
            foreign_origin = origin is not None and re.sub(r"^[a-z]+://", "", origin) != host
            if site in ("cross-site", "same-site") or foreign_origin:
                return _error(403, "requests from other sites are refused; use the page at / "
                                   "or call the API directly")  # fmt: skip
        if method == "POST":
            length = headers.get("content-length")
            if length is None:
                return _error(411, "the request has no Content-Length; send the image as a form "
                                   "upload")  # fmt: skip
            if not length.isdigit() or int(length) > self.max_bytes:
                mb = self.max_bytes / 1024 / 1024
                return _error(413, f"the upload is over the {mb:g} MB limit; send a smaller image")
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers(scope["path"])
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *(h for h in extra if h[0] not in names)]}  # fmt: skip
            await send(message)

        refusal = self.refusal(scope)
        kind = _routes_kind(scope["path"], scope["method"], self.kinds)
        if refusal is None and kind is not None and kind.admitted >= kind.jobs + kind.queue:
            refusal = kind.busy()
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        if kind is not None:
            kind.admitted += 1
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as e:  # noqa: BLE001  every answer is JSON, a failure too
            log.exception("internal error on %s %s", scope["method"], scope["path"])
            if started:
                raise
            await _error(500, f"internal error: {type(e).__name__}")(scope, receive,
                                                                     send_with_headers)  # fmt: skip
        finally:
            if kind is not None:
                kind.admitted -= 1
                if kind.admitted == 0:
                    _give_back_memory()


def _give_back_memory() -> None:
    """Return freed heap to the system when idle (glibc keeps it in per-thread arenas)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class JSONErrorsH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, whose own 400 for a request it cannot parse is JSON."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": f"bad HTTP request: {msg}"}).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                   (b"content-length", str(len(body)).encode()),
                   (b"x-content-type-options", b"nosniff")]  # fmt: skip
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=body), h11.EndOfMessage()):  # fmt: skip
            self.transport.write(self.conn.send(event))
        self.transport.close()


# --- the gallery ------------------------------------------------------------------------------


class Gallery:
    """The test punks of the model's split, predicted once at start-up."""

    def __init__(self, predictor: Predictor, data_dir: str | os.PathLike | None):
        from . import data as D

        self.punks = None
        self.items: list[dict] = []
        self.reason: str | None = None
        try:
            punks = D.load(data_dir, download=False, progress=False)
            scores = predictor.run.score_test_split(punks)
        except (DataError, RunError) as e:
            self.reason = f"no gallery: {e}"
            return
        self.punks = punks
        self.test = scores.test
        traits = predictor.traits
        pred, truth = scores.pred.astype(bool), scores.truth.astype(bool)
        hidden = scores.hidden if scores.hidden is not None else np.zeros_like(truth)
        visible_wrong = (pred != (truth & ~hidden)).any(1)
        official_wrong = (pred != truth).any(1)
        for k, i in enumerate(self.test.tolist()):
            kind = [t for t in TYPES if t in traits and truth[k, traits.index(t)]]
            self.items.append({
                "id": i,
                "uri": punk_uri(punks.images[i]),  # one request for the whole gallery
                "type": kind[0] if kind else None,
                "wrong": bool(visible_wrong[k]),  # an error on what the pixels show
                "hidden_only": bool(official_wrong[k] and not visible_wrong[k]),
            })  # fmt: skip

    def labels(self, i: int, traits: list[str]) -> dict:
        p = self.punks
        row = p.labels[i]
        hidden = p.hidden[i] if p.hidden is not None else np.zeros_like(row, bool)
        names = [t for t in traits if row[p.traits.index(t)]]
        return {
            "official": names,
            "hidden": [t for t in names if hidden[p.traits.index(t)]],
            "test": bool((self.test == i).any()),
        }


# --- the app ----------------------------------------------------------------------------------

UPLOAD_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["image"],
        "properties": {"image": {"type": "string", "format": "binary"},
                       "trait": {"type": "string", "description": "explain: one trait only"}},
    }}},
}  # fmt: skip


def create_app(
    model: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    gallery: bool = True,
    max_upload: int = MAX_UPLOAD,
    allowed_hosts: list[str] | None = None,
    jobs: tuple[int, int] = (2, 2),
    queue: tuple[int, int] = (32, 16),
) -> FastAPI:
    """The app with its model loaded (raises PunktraitsError if the run folder is unusable).

    `allowed_hosts`: the Host names it answers for (None: any; `serve` passes localhost and its
    --host). `jobs`, `queue`: model jobs at once and waiting requests, for (predict, explain)."""
    predictor = Predictor(model)
    predictor.probabilities(np.zeros((1, 24, 24, 4), np.uint8))  # fails now if weights are off
    shelf = Gallery(predictor, data_dir) if gallery else None
    page = resources.files("punktraits").joinpath("static/index.html").read_text("utf-8")
    kinds = {"predict": Kind("predict", jobs[0], queue[0]),
             "explain": Kind("explain", jobs[1], queue[1])}  # fmt: skip
    if shelf is None or shelf.punks is None:
        reason = shelf.reason if shelf else "the gallery is off (--no-gallery)"
        gallery_json = json.dumps({"available": False, "reason": reason, "punks": []})
    else:
        gallery_json = json.dumps({"available": True, "reason": None, "punks": shelf.items})

    app = FastAPI(
        title="punktraits",
        version=__version__,
        description="The 92 traits of a CryptoPunk image, and the pixels behind them.",
    )
    hosts = None if allowed_hosts is None else {_host_name(h) for h in allowed_hosts}
    app.add_middleware(Guard, kinds=kinds, max_bytes=max_upload, hosts=hosts,
                       page_csp=_page_csp(page))  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return _error(422, f"{shown(where, ECHO)}: {first.get('msg', 'invalid')}")

    async def one_image(request: Request) -> tuple[bytes, str, str | None]:
        """The bytes and file name of the one `image` of a multipart form, and its `trait`."""
        try:
            form = await request.form(max_files=16, max_fields=16)
        except StarletteHTTPException as e:  # the multipart parser's own reasons
            raise HTTPException(e.status_code, f"the form cannot be read ({e.detail}); send the "
                                "image as field 'image' of a multipart form") from None  # fmt: skip
        try:
            images = form.getlist("image")
            trait = form.get("trait")
            if not images:
                raise HTTPException(422, "send the image as field 'image' of a multipart form")
            if len(images) > 1:
                raise HTTPException(422, f"send one image per request (got {len(images)} in "
                                         "field 'image')")  # fmt: skip
            image = images[0]
            if not isinstance(image, UploadFile):
                raise HTTPException(422, "field 'image' must be a file, not text")
            if trait is not None and not isinstance(trait, str):
                raise HTTPException(422, "field 'trait' must be text, not a file")
            data = await image.read(max_upload + 1)
        finally:
            await form.close()
        if len(data) > max_upload:  # a form may hold more than its declared parts
            raise HTTPException(413, f"the upload is over the {max_upload / 1024 / 1024:g} MB "
                                     "limit")  # fmt: skip
        name = Path(image.filename or "upload").name or "upload"
        return data, name[:ECHO], trait

    def predict_bytes(data: bytes, name: str) -> tuple[np.ndarray, Prediction]:
        try:
            punk, info = predictor.to_punk(data, name)
        except ImageError as e:
            raise HTTPException(e.status, str(e)) from None
        return punk, predictor.predict_punk(punk, name, info)

    def predict_upload(data: bytes, name: str) -> Prediction:
        """The answer for an upload; a picture that is not one punk is searched for one (a
        caption or a frame around it): the one punk found is the answer, with its box."""
        first: Prediction | HTTPException
        try:
            punk, info = predictor.to_punk(data, name)
            first = predictor.predict_punk(punk, name, info)
            if first.error is None:
                return first
        except ImageError as e:
            if e.status != 422 or "smaller than" in str(e):
                raise HTTPException(e.status, str(e)) from None
            first = HTTPException(422, str(e))
        try:
            found = predictor.search(data, name)
        except ImageError:
            found = []
        if len(found) > 1:
            raise HTTPException(422, f"{name}: {len(found)} punks in it (a screenshot or a grid); "
                                "POST it to /api/find, which answers each with its box")  # fmt: skip
        if found:
            return found[0]
        if isinstance(first, HTTPException):
            raise first
        return first  # drawn back, not a punk: its answer says why

    def formatted(p: Prediction, fmt: str) -> JSONResponse:
        """?format=json: the prediction; onchain: {file, onchain: punkAttributes string};
        opensea: OpenSea metadata (an original's name and page when the pixels are one)."""
        from .collection import onchain, opensea

        if fmt == "json":
            return answer(p.to_dict())
        if p.error:
            return _error(422, p.error)
        try:
            if fmt == "onchain":
                return answer({"file": p.file, "onchain": onchain(p.head or p.type, p.accessories)})
            return answer(opensea(p.head or p.type, p.accessories, id=(p.original or {}).get("id")))
        except PunktraitsError as e:
            return _error(422, f"{p.file}: {e}")

    def answer(obj: dict) -> JSONResponse:
        """JSON rendered here, in the worker thread, not in the event loop (NaN is an error)."""
        return _json(200, obj)

    def explained(punk: np.ndarray, pred: Prediction, traits: list[str]) -> dict:
        heat = predictor.occlusion(punk, traits)
        maps = {}
        for t, h in heat.items():
            top = float(h.max())
            maps[t] = {"max": round(top, 4), "map": np.round(h / top if top > 0 else h, 2).tolist()}
        c = pred.drawn  # the answer drawn back with the learned sprites, and where it differs
        drawn = punk_uri(c.drawn) if c is not None and c.drawn is not None else None
        differ = c.where.astype(int).tolist() if c is not None and c.where is not None else None
        return {"prediction": pred.to_dict(), "punk": punk_uri(punk), "heatmaps": maps,
                "drawn": drawn, "differ": differ}  # fmt: skip

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return page

    @app.get("/api/health")
    async def health() -> dict:
        """The loaded model; `gallery` is the number of test punks, or null with a reason.
        Answered in the event loop: never waits for model work."""
        return {
            "status": "ok",
            "version": __version__,
            "model": str(predictor.run.path),
            "recipe": predictor.run.config["recipe"],
            "traits": len(predictor.traits),
            "gallery": len(shelf.items) if shelf and shelf.punks is not None else None,
            "gallery_note": None if shelf is None else shelf.reason,
            "max_upload_bytes": max_upload,
            "busy": {k.name: k.admitted for k in kinds.values()},
        }

    @app.post("/api/predict", openapi_extra={"requestBody": UPLOAD_BODY})
    async def predict(request: Request, format: str = "json") -> dict:
        """The traits of one image (any scale, background, PNG/JPEG/GIF/WebP/BMP): the same
        object as one element of `punktraits predict --format json`."""
        if format not in ("json", "onchain", "opensea"):
            raise HTTPException(422, f"unknown format {shown(format, ECHO)}; use json, onchain "
                                     "or opensea")  # fmt: skip
        data, name, _ = await one_image(request)
        return await kinds["predict"].run(lambda: formatted(predict_upload(data, name), format))

    @app.post("/api/find", openapi_extra={"requestBody": UPLOAD_BODY})
    async def find(request: Request) -> dict:
        """Every punk in a picture (a marketplace page, a grid, a sheet like punks.png): one
        answer each, with its `box` [x, y, w, h], in reading order. A picture with none: 422 with
        the reason."""
        data, name, _ = await one_image(request)

        def work() -> JSONResponse:
            try:
                found = predictor.find(data, name)
            except ImageError as e:
                return _error(e.status, str(e))
            if len(found) == 1 and found[0].error:
                return _error(422, found[0].error)
            return answer({"file": name, "punks": [p.to_dict() for p in found]})

        return await kinds["predict"].run(work)

    @app.post("/api/explain", openapi_extra={"requestBody": UPLOAD_BODY})
    async def explain(request: Request) -> dict:
        """The prediction, the normalised punk (24x24 PNG data URI) and, per trait, a 24x24
        occlusion heatmap scaled to [0, 1] (`max` is the score drop of its hottest pixel);
        `trait` limits the heatmaps to that trait."""
        data, name, trait = await one_image(request)
        if trait is not None and trait not in predictor.traits:
            raise HTTPException(422, f"unknown trait {shown(trait, ECHO)}; see `punktraits "
                                     "data` for the 92 names")  # fmt: skip

        def work():
            punk, pred = predict_bytes(data, name)
            return answer(explained(punk, pred, [trait] if trait else predictor.traits))

        return await kinds["explain"].run(work)

    def need_gallery():
        if shelf is None or shelf.punks is None:
            reason = "the gallery is off" if shelf is None else shelf.reason
            raise HTTPException(404, f"{reason}; start with --data-dir DIR for the gallery")

    def punk_id(text: str) -> int:
        """A punk id of the collection from a URL, or a one-line 422 / 404."""
        if not re.fullmatch(r"[0-9]{1,5}", text):
            raise HTTPException(422, f"punk id must be an integer 0..9999 (got "
                                     f"{shown(text, ECHO)})")  # fmt: skip
        need_gallery()
        i = int(text)
        if i >= len(shelf.punks):
            raise HTTPException(404, f"no punk #{i}; ids are 0..{len(shelf.punks) - 1}")
        return i

    @app.get("/api/gallery")
    async def gallery_list() -> Response:
        """The model's test punks; `wrong`: a prediction differs from the visible labels;
        `hidden_only`: it differs only on labels that are painted over."""
        return Response(gallery_json, media_type="application/json")

    @app.get("/api/punks/{ident}.png", response_class=Response)
    async def punk_image(ident: str):
        i = punk_id(ident)
        return Response(punk_png(shelf.punks.images[i]), media_type="image/png",
                        headers={"Cache-Control": "max-age=3600"})  # fmt: skip

    @app.get("/api/punks/{ident}")
    async def punk_detail(ident: str) -> dict:
        """One punk of the collection: explained as an upload would be, plus its labels."""
        i = punk_id(ident)

        def work():
            punk = shelf.punks.images[i]
            pred = predictor.predict_punk(punk, f"#{i}")
            return answer({**explained(punk, pred, predictor.traits),
                           "labels": shelf.labels(i, predictor.traits)})  # fmt: skip

        return await kinds["explain"].run(work)

    return app


def _page_csp(page: str) -> str:
    """The page's policy: its own inline scripts by hash, nothing from elsewhere. ('unsafe-eval'
    lets browser tests poll the page with Playwright's wait_for_function, which evals a string;
    the page itself never evals, and no injected or remote script runs.)"""
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in scripts
    )
    return (f"default-src 'none'; script-src {hashes} 'unsafe-eval'; style-src 'unsafe-inline'; "
            "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")  # fmt: skip


ENV_SETTINGS = "PUNKTRAITS_SERVE"  # how `serve --workers N` passes its settings to the workers


def app_from_env() -> FastAPI:
    """The app of one worker process of `serve --workers N` (uvicorn imports and calls this)."""
    import torch

    settings = json.loads(os.environ[ENV_SETTINGS])
    threads = settings.pop("threads")
    if threads:
        torch.set_num_threads(threads)
    return create_app(**settings)


def allowed_hosts_for(host: str) -> list[str] | None:
    """The Host names a server listening on `host` answers for: localhost's names, the address
    itself, and those in $PUNKTRAITS_ALLOWED_HOSTS ("*": any). On 0.0.0.0 / :: any name
    reaches it, so it answers for any unless names are listed."""
    extra = [h.strip() for h in os.environ.get(ENV_HOSTS, "").split(",") if h.strip()]
    if "*" in extra or (host in ("0.0.0.0", "::", "") and not extra):
        return None
    return [*LOCAL_HOSTS, host, *extra]


def serve(
    model=None, data_dir=None, host: str = "127.0.0.1", port: int = 8000, gallery: bool = True,
    max_upload: int = MAX_UPLOAD, threads: int | None = None, workers: int = 1,
    allowed_hosts: list[str] | None = None,
) -> None:  # fmt: skip
    """Load the model, then listen (blocking). With `workers` > 1, that many processes, each
    with its own copy of the model and (Linux) its own listening socket (`_Workers`): image
    normalisation is Python work that holds the GIL, so processes, not threads, use more cores."""
    import torch
    import uvicorn

    if threads:
        torch.set_num_threads(threads)
    hosts = allowed_hosts if allowed_hosts is not None else allowed_hosts_for(host)
    try:
        # Also with workers: a missing or broken model fails here, before anything listens.
        app = create_app(model, data_dir, gallery and workers == 1, max_upload, hosts)
    except PunktraitsError:
        raise  # already one line that names the file
    except (RuntimeError, ValueError) as e:
        raise PunktraitsError(f"cannot start: the model does not load ({e})") from None
    if workers == 1:
        (sock,) = _listening(host, port, 1)
        config = uvicorn.Config(app, log_level="warning", http=JSONErrorsH11)
        uvicorn.Server(config).run(sockets=[sock])
        return
    os.environ[ENV_SETTINGS] = json.dumps({
        "model": None if model is None else str(Path(model).resolve()),
        "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
        "gallery": gallery, "max_upload": max_upload, "allowed_hosts": hosts,
        "threads": threads,
    })  # fmt: skip
    if not hasattr(socket, "SO_REUSEPORT") or not sys.platform.startswith("linux"):
        # (elsewhere SO_REUSEPORT does not spread connections: one shared socket, as uvicorn's)
        uvicorn.run("punktraits.server:app_from_env", factory=True, workers=workers, host=host,
                    port=port, log_level="warning", http=JSONErrorsH11)  # fmt: skip
        return
    _Workers(workers, host, port).run()


class _Workers:
    """`serve --workers N` on Linux: N processes, each serving a listening socket of its own,
    all bound to the same address (SO_REUSEPORT), so the kernel spreads connections over them.
    (uvicorn's own workers share one socket: whichever is idle accepts, so 8 keep-alive clients
    that connect at once all land on one worker and the other core idles: RESULTS §6.)

    The sockets listen before any worker starts: connections that come while the workers load
    their models wait in their socket's queue, not all on the first worker up. A worker that
    dies is started again on its socket; one that cannot start (uvicorn's startup failure)
    stops them all. Ctrl-C or SIGTERM stops every worker, each finishing its requests."""

    STARTUP_FAILURE = 3  # uvicorn's exit code for an app that cannot start

    def __init__(self, n: int, host: str, port: int):
        import multiprocessing

        self.spawn = multiprocessing.get_context("spawn")
        self.sockets = _listening(host, port, n)
        self.stop = False

    def start(self, k: int):
        p = self.spawn.Process(target=_worker, args=(self.sockets[k],))
        p.start()
        return p

    def run(self) -> None:
        import signal

        def stop(*_):
            self.stop = True

        old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        procs = [self.start(k) for k in range(len(self.sockets))]
        failed = False
        try:
            while not self.stop:
                for k, p in enumerate(procs):
                    p.join(0.25 / len(procs))
                    if p.exitcode is None or self.stop:
                        continue
                    if p.exitcode == self.STARTUP_FAILURE:
                        self.stop = failed = True
                        break
                    print(f"worker {p.pid} ended ({p.exitcode}); starting another",
                          file=sys.stderr, flush=True)  # fmt: skip
                    procs[k] = self.start(k)
        finally:
            for p in procs:
                if p.exitcode is None:
                    p.terminate()  # SIGTERM: uvicorn finishes the requests under way
            for p in procs:
                p.join(10)
                if p.exitcode is None:
                    p.kill()
                    p.join()
            for sock in self.sockets:
                sock.close()
            for s, h in old.items():
                signal.signal(s, h)
        if failed:
            raise PunktraitsError(
                "cannot start: a worker process failed before serving (its error is above)"
            )


def _listening(host: str, port: int, n: int) -> list[socket.socket]:
    """`n` TCP sockets listening on (host, port), with SO_REUSEPORT when more than one (the
    kernel spreads connections over them); a one-line error when the address is taken. The
    address is first bound alone, so a server already there (even one of ours, which allows
    sharing) is an error, not a silent partner."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    try:
        if n > 1:  # alone first: taken by anyone, ours included, fails here
            with socket.socket(family) as alone:
                alone.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                alone.bind((host, port))
                port = alone.getsockname()[1]  # (0: any free port, the same for all)
        for _ in range(n):
            # (IPPROTO_TCP named: asyncio turns Nagle off, TCP_NODELAY, only on sockets that
            # say so; with proto 0 each answer waited ~40 ms for the client's delayed ACK)
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if n > 1:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(2048)  # (uvicorn's default backlog)
    except OSError as e:
        for sock in socks:
            sock.close()
        raise PunktraitsError(f"cannot listen on {host}:{port} ({e.strerror}); "
                              "pass another --port or --host") from None  # fmt: skip
    return socks


def _worker(sock: socket.socket) -> None:
    """One process of `_Workers`: its socket, the app from the settings the parent put in the
    environment."""
    import uvicorn

    config = uvicorn.Config("punktraits.server:app_from_env", factory=True, log_level="warning",
                            http=JSONErrorsH11)  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])
