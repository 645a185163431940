"""The page's "on this device" mode as files: what it loads, the headers that give it WebAssembly threads, and
``write_site`` (``ferkit site OUT_DIR``), which writes the page as a static site that works from any file server.

Needs no FastAPI: ``ferkit site`` runs on the base install. Layout, the same under ``ferkit serve`` and in a site::

    index.html                     the page (a site's copy says <html data-ferkit="site">: on-device only)
    static/style.css, app.js       the page's server mode (app.js is left out of a site: there is no server)
    static/device/*.js, *.css      the on-device mode (CenterFace, crop, tracking, drawing in JavaScript)
    static/ort/                    onnxruntime-web (pinned, MIT; LICENSE and MANIFEST.json beside the files)
    models/centerface.onnx         the face detector, as shipped
    models/ferkit-fast.onnx        the int8 `fast` emotion model, as shipped
    _headers                       COOP/COEP for hosts that read it (Netlify, Cloudflare Pages)

With ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy: require-corp`` the page is
cross-origin isolated and onnxruntime-web runs several WebAssembly threads; a server that cannot send them
(``python -m http.server``, GitHub Pages) gets the same page on one thread.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
SITE_MARK = '<html lang="en" data-ferkit="site">'
SERVER_SCRIPT = '<script src="static/app.js"></script>\n'


def model_files() -> dict[str, Path]:
    """{file name: path} of the two models the page runs (the shipped CenterFace and int8 ``fast`` files)."""
    from ..faces.centerface import model_path as centerface_path
    from ..weights import model_path

    return {"centerface.onnx": centerface_path(), "ferkit-fast.onnx": model_path("fast")}


def model_file(name: str) -> Path | None:
    """The path of one of :func:`model_files` by file name (None for any other name)."""
    p = model_files().get(name)
    return p if p is not None and p.is_file() else None


def ort_manifest() -> dict:
    """onnxruntime-web's version and files (``static/ort/MANIFEST.json``, scripts/vendor_onnxruntime_web.py)."""
    return json.loads((STATIC / "ort" / "MANIFEST.json").read_text())


def site_html() -> str:
    """The page for a static site: marked as one (on-device mode only) and without the server mode's script."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    if html.count("<html lang=\"en\">") != 1 or html.count(SERVER_SCRIPT) != 1:
        raise RuntimeError(f"{STATIC / 'index.html'}: cannot make the site's page (no single <html lang=\"en\"> "
                           f"or {SERVER_SCRIPT.strip()})")
    return html.replace('<html lang="en">', SITE_MARK).replace(SERVER_SCRIPT, "")


def write_site(out_dir: str | os.PathLike) -> dict:
    """Write the on-device page and everything it loads into ``out_dir`` (created; an existing folder must be
    empty or a previous ferkit site, whose files are replaced). Written to a temporary folder beside it first, then
    moved into place file by file, so a failure leaves no half-written page. Returns a summary (files, bytes)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    others = [p for p in out.iterdir() if not p.name.startswith(".ferkit-site-")] if out.is_dir() else []
    if others and not (out / "static" / "device" / "device.js").is_file():  # (a killed run's temp folder: ignored)
        raise ValueError(f"{out}: a folder with other files in it; give an empty or new folder (ferkit site "
                         "replaces only a previous site)")
    models = model_files()
    missing = [str(p) for p in models.values() if not p.is_file()]
    ort_missing = [f for f in ort_manifest()["files"] if not (STATIC / "ort" / f).is_file()]
    if missing or ort_missing:
        raise FileNotFoundError("the installation lacks files the page needs: "
                                + ", ".join(missing + [str(STATIC / "ort" / f) for f in ort_missing]))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".ferkit-site-") as tmp:
        t = Path(tmp)
        (t / "index.html").write_text(site_html(), encoding="utf-8")
        (t / "static").mkdir()
        shutil.copy2(STATIC / "style.css", t / "static" / "style.css")
        shutil.copytree(STATIC / "device", t / "static" / "device", ignore=shutil.ignore_patterns(".*"))
        shutil.copytree(STATIC / "ort", t / "static" / "ort", ignore=shutil.ignore_patterns(".*"))
        (t / "models").mkdir()
        for name, p in models.items():
            shutil.copy2(p, t / "models" / name)
        rules = "".join(f"  {k}: {v}\n" for k, v in ISOLATION_HEADERS.items())
        (t / "_headers").write_text(f"/*\n{rules}")
        files = sorted(p.relative_to(t) for p in t.rglob("*") if p.is_file())
        for rel in files:
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(t / rel, dst)
    return {"out": str(out), "files": [str(f) for f in files],
            "bytes": sum((out / f).stat().st_size for f in files), "onnxruntime_web": ort_manifest()["version"]}


class CrossOriginIsolation:
    """ASGI middleware: every response of ``ferkit serve`` carries :data:`ISOLATION_HEADERS`, so its page is
    cross-origin isolated and the on-device mode gets WebAssembly threads (the page loads nothing cross-origin)."""

    def __init__(self, app):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in ISOLATION_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_(msg):
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg = {**msg, "headers": [*msg.get("headers", []), *(h for h in self.headers if h[0] not in have)]}
            await send(msg)

        return await self.app(scope, receive, send_)
