"""The operator dashboard: a static page at ``/`` that reads the JSON API with the
viewer's key (it asks for the key; the page itself needs none)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["dashboard"])


@router.get("/", response_class=HTMLResponse)
def dashboard() -> FileResponse:
    """The operator dashboard (HTML); it needs no key, and asks the viewer for one."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


def static_files() -> StaticFiles:
    """The page's scripts, styles and bundled chart library, mounted at ``/static``."""
    return StaticFiles(directory=STATIC_DIR)
