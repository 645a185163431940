"""Admission of the analysis requests: the queue bound is applied before a body is read, bodies have a time
limit, and the work of a client that has gone away is dropped.

* A ``POST`` to an analysis route takes a slot when it arrives, before one byte of its body is read. When
  ``concurrency + max_queue`` slots are taken it is answered 503 at once (``Retry-After: 1``, connection
  closed): a full server neither reads nor keeps another body, and ``/healthz`` counts bodies still arriving.
* The body must arrive within ``body_timeout`` seconds, with no pause longer than ``body_idle_timeout``;
  otherwise 408 and the connection is closed (a stalled upload no longer holds a slot and its bytes forever).
* The slot is held until the job has finished or been dropped: a client that disconnects while its job
  waits has it taken off the queue, and a batch being analysed stops before its next image
  (:class:`ClientGone`, logged as 499). A client that disconnects while sending is logged as 499 too.

``InferenceService`` keeps the counters (``pending``, ``receiving``, ``dropped``, ``timed_out``) that
``/healthz`` shows; everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio

from .limits import ApiError, send_error

ANALYSIS_PATHS = frozenset({"/v1/emotions", "/v1/emotions/batch"})
CLIENT_GONE = 499  # nginx's "client closed request": only ever seen in the access log


class ClientGone(Exception):
    """The client disconnected before its answer was ready; its job was dropped."""


class Admission:
    """ASGI middleware for :data:`ANALYSIS_PATHS`: slot on arrival, body deadline (see the module docstring)."""

    def __init__(self, app, service, body_timeout: float, body_idle_timeout: float):
        self.app, self.svc = app, service
        self.body_timeout, self.idle = float(body_timeout), float(min(body_idle_timeout, body_timeout))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in ANALYSIS_PATHS:
            return await self.app(scope, receive, send)
        svc = self.svc
        if svc.pending >= svc.capacity:
            svc.refused += 1
            return await send_error(send, ApiError(
                503, "busy", f"server busy: {svc.pending} requests are being received, analysed or waiting "
                "(the most this server takes); retry shortly", headers={"Retry-After": "1"}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        receiving = True
        svc.pending += 1
        svc.receiving += 1

        def body_done():
            nonlocal receiving
            if receiving:
                receiving = False
                svc.receiving -= 1

        async def timed_receive():
            if not receiving:  # the body is complete: what remains to hear is a disconnect, at any time
                return await receive()
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                msg = await asyncio.wait_for(receive(), min(self.idle, left))
            except TimeoutError:
                body_done()
                svc.timed_out += 1
                why = (f"did not arrive within {self.body_timeout:g} s" if left <= self.idle
                       else f"stalled for {self.idle:g} s")
                raise ApiError(408, "body_timeout", f"the request body {why}: send it at once (the connection "
                               "is closed)", headers={"Connection": "close"}) from None
            if msg["type"] != "http.request" or not msg.get("more_body", False):
                body_done()
            return msg

        try:
            return await self.app(scope, timed_receive, send)
        finally:
            body_done()
            svc.pending -= 1


async def wait_for_disconnect(receive) -> None:
    """Returns when the client has disconnected; call only once the request body has been read."""
    while (await receive())["type"] != "http.disconnect":
        pass
