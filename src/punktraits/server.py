"""The web app of `punktraits serve`: drop a punk, see its traits and why.

    GET  /                  the page (static/index.html: plain HTML, CSS and JS, nothing remote)
    GET  /api/health        the model that is loaded, and whether the gallery is available
    POST /api/predict       multipart `image` -> the same object as `predict --format json`
    POST /api/explain       multipart `image` -> {prediction, punk (PNG data URI), heatmaps}
    GET  /api/gallery       the test punks of the model's split, with their errors
    GET  /api/punks/{id}    one punk of the collection, explained, with its official labels
    GET  /api/punks/{id}.png
    GET  /docs, /openapi.json   FastAPI's own

The model is loaded once, when the app is made: a missing or broken run folder fails there,
before the server listens. Uploads are limited in bytes before they are read (413, and 411 when
a POST does not say its length) and in pixels before they are decoded (413, normalize.py); an
unreadable file is 415 (not an image) or 422 (corrupt, or not a punk). Every error is JSON
{"error": "one line"}.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .data import TYPES
from .errors import DataError, ImageError, PunktraitsError, RunError
from .files import punk_png, punk_uri
from .predict import Prediction, Predictor
from .version import __version__

MAX_UPLOAD = 5 * 1024 * 1024  # bytes of a request body


class UploadLimit:
    """ASGI middleware: refuse a POST whose declared body is over `max_bytes` before reading it.
    Without a Content-Length the length is unknown until read, so such a POST is refused (411);
    with one, the HTTP server stops the body at that length."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            length = dict(scope["headers"]).get(b"content-length")
            error = None
            if length is None:
                error = (411, "the request has no Content-Length; send the image as a form upload")
            elif not length.isdigit() or int(length) > self.max_bytes:
                mb = self.max_bytes / 1024 / 1024
                error = (413, f"the upload is over the {mb:g} MB limit; send a smaller image")
            if error:
                response = JSONResponse({"error": error[1]}, status_code=error[0])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(
    model: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    gallery: bool = True,
    max_upload: int = MAX_UPLOAD,
) -> FastAPI:
    """The app with its model loaded (raises PunktraitsError if the run folder is unusable)."""
    predictor = Predictor(model)
    predictor.probabilities(np.zeros((1, 24, 24, 4), np.uint8))  # fails now if weights are off
    shelf = Gallery(predictor, data_dir) if gallery else None
    page = resources.files("punktraits").joinpath("static/index.html").read_text("utf-8")

    app = FastAPI(
        title="punktraits",
        version=__version__,
        description="The 92 traits of a CryptoPunk image, and the pixels behind them.",
    )
    app.add_middleware(UploadLimit, max_bytes=max_upload)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return _error(
            422, f"{where}: {first.get('msg', 'invalid')}; send the image as field 'image'"
        )

    async def read_upload(image: UploadFile) -> tuple[bytes, str]:
        data = await image.read(max_upload + 1)
        if len(data) > max_upload:
            raise HTTPException(
                413, f"the upload is over the {max_upload / 1024 / 1024:g} MB limit"
            )
        return data, Path(image.filename or "upload").name

    def predict_bytes(data: bytes, name: str) -> tuple[np.ndarray, Prediction]:
        try:
            punk, info = predictor.to_punk(data, name)
        except ImageError as e:
            raise HTTPException(e.status, str(e)) from None
        return punk, predictor.predict_punk(punk, name, info)

    def explained(punk: np.ndarray, pred: Prediction) -> dict:
        heat = predictor.occlusion(punk, predictor.traits)
        maps = {}
        for t, h in heat.items():
            top = float(h.max())
            maps[t] = {"max": round(top, 4), "map": np.round(h / top if top > 0 else h, 2).tolist()}
        return {"prediction": pred.to_dict(), "punk": punk_uri(punk), "heatmaps": maps}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index():
        return page

    @app.get("/api/health")
    def health() -> dict:
        """The loaded model; `gallery` is the number of test punks, or null with a reason."""
        return {
            "status": "ok",
            "version": __version__,
            "model": str(predictor.run.path),
            "recipe": predictor.run.config["recipe"],
            "traits": len(predictor.traits),
            "gallery": len(shelf.items) if shelf and shelf.punks is not None else None,
            "gallery_note": None if shelf is None else shelf.reason,
            "max_upload_bytes": max_upload,
        }

    @app.post("/api/predict")
    async def predict(image: Annotated[UploadFile, File()]) -> dict:
        """The traits of one image (any scale, background, PNG/JPEG/GIF/WebP/BMP): the same
        object as one element of `punktraits predict --format json`."""
        data, name = await read_upload(image)
        _, pred = await _in_thread(predict_bytes, data, name)
        return pred.to_dict()

    @app.post("/api/explain")
    async def explain(
        image: Annotated[UploadFile, File()], trait: Annotated[str | None, Form()] = None
    ) -> dict:
        """The prediction, the normalised punk (24x24 PNG data URI) and, per trait, a 24x24
        occlusion heatmap scaled to [0, 1] (`max` is the score drop of its hottest pixel)."""
        if trait is not None and trait not in predictor.traits:
            raise HTTPException(422, f"unknown trait {trait!r}")
        data, name = await read_upload(image)

        def work():
            punk, pred = predict_bytes(data, name)
            return explained(punk, pred)

        return await _in_thread(work)

    def need_gallery():
        if shelf is None or shelf.punks is None:
            reason = "the gallery is off" if shelf is None else shelf.reason
            raise HTTPException(404, f"{reason}; start with --data-dir DIR for the gallery")

    @app.get("/api/gallery")
    def gallery_list() -> dict:
        """The model's test punks; `wrong`: a prediction differs from the visible labels;
        `hidden_only`: it differs only on labels that are painted over."""
        if shelf is None or shelf.punks is None:
            return {
                "available": False,
                "reason": shelf.reason if shelf else "the gallery is off (--no-gallery)",
                "punks": [],
            }
        return {"available": True, "reason": None, "punks": shelf.items}

    @app.get("/api/punks/{punk_id}.png", response_class=Response)
    def punk_image(punk_id: int):
        need_gallery()
        if not 0 <= punk_id < len(shelf.punks):
            raise HTTPException(404, f"no punk #{punk_id}; ids are 0..{len(shelf.punks) - 1}")
        return Response(punk_png(shelf.punks.images[punk_id]), media_type="image/png",
                        headers={"Cache-Control": "max-age=3600"})  # fmt: skip

    @app.get("/api/punks/{punk_id}")
    def punk_detail(punk_id: int) -> dict:
        """One punk of the collection: explained as an upload would be, plus its labels."""
        need_gallery()
        if not 0 <= punk_id < len(shelf.punks):
            raise HTTPException(404, f"no punk #{punk_id}; ids are 0..{len(shelf.punks) - 1}")
        punk = shelf.punks.images[punk_id]
        pred = predictor.predict_punk(punk, f"#{punk_id}")
        return {**explained(punk, pred), "labels": shelf.labels(punk_id, predictor.traits)}

    return app


async def _in_thread(fn, *args):
    """Model work off the event loop, so that many requests at once are served side by side."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


ENV_SETTINGS = "PUNKTRAITS_SERVE"  # how `serve --workers N` passes its settings to the workers


def app_from_env() -> FastAPI:
    """The app of one worker process of `serve --workers N` (uvicorn imports and calls this)."""
    import json

    import torch

    settings = json.loads(os.environ[ENV_SETTINGS])
    threads = settings.pop("threads")
    if threads:
        torch.set_num_threads(threads)
    return create_app(**settings)


def serve(
    model=None, data_dir=None, host: str = "127.0.0.1", port: int = 8000, gallery: bool = True,
    max_upload: int = MAX_UPLOAD, threads: int | None = None, workers: int = 1,
) -> None:  # fmt: skip
    """Load the model, then listen (blocking). With `workers` > 1, uvicorn runs that many
    processes, each with its own copy of the model: image normalisation is Python work that holds
    the GIL, so processes, not threads, use more cores."""
    import json

    import torch
    import uvicorn

    if threads:
        torch.set_num_threads(threads)
    try:
        # Also with workers: a missing or broken model fails here, before anything listens.
        app = create_app(model, data_dir, gallery and workers == 1, max_upload)
    except PunktraitsError:
        raise  # already one line that names the file
    except (RuntimeError, ValueError) as e:
        raise PunktraitsError(f"cannot start: the model does not load ({e})") from None
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    os.environ[ENV_SETTINGS] = json.dumps({
        "model": None if model is None else str(Path(model).resolve()),
        "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
        "gallery": gallery, "max_upload": max_upload,
        "threads": threads,
    })  # fmt: skip
    uvicorn.run("punktraits.server:app_from_env", factory=True, workers=workers, host=host,
                port=port, log_level="warning")  # fmt: skip
