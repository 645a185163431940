"""``ferkit serve``: a REST API (FastAPI + uvicorn) and a browser page on the runtime recognizer.
A door: may import FastAPI, uvicorn and every runtime room (recognizer, faces, images, weights); never torch.

Install with ``pip install 'ferkit[serve]'``. Files, one concern each:

* ``config``    -- :class:`ServeConfig`, what the server was started with (passed to worker processes)
* ``limits``    -- upload size, pixel count, accepted formats; bytes -> BGR image or a 4xx :class:`ApiError`
* ``admission`` -- requests in: a place in the queue before the body is read (or 503), a deadline for the body
  (408), the work of a client that has gone dropped
* ``inference`` -- the recognizers and the thread pool that keeps inference off the event loop
* ``schemas``   -- the JSON shapes, for the OpenAPI document
* ``app``       -- the FastAPI application: routes, error handlers, one log line per request
* ``site``      -- the page's on-device mode as files (models, onnxruntime-web, COOP/COEP) and ``ferkit site``,
  which writes the page as a static site (no FastAPI needed)
* ``static/``   -- the page at ``/`` (plain HTML + JS + CSS, nothing from the internet); ``static/device/`` its
  on-device mode (detection, alignment, crop, tracking in JavaScript), ``static/ort/`` onnxruntime-web (pinned)

The runtime rooms (recognizer, faces, images) never import this package.
"""

from .config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def create_app(config: ServeConfig | None = None):
    from .app import create_app as _create

    return _create(config)
