"""How `ferkit serve` takes requests in, against a real uvicorn on 127.0.0.1 with raw sockets (clients that
stall, send half a body or go away, which httpx will not do): a full server answers 503 before reading a
body, a stalled body gets 408 after --body-timeout, the work of a client that has gone is dropped, and the
memory held by stalled uploads is bounded by the queue. Every wait is a bounded loop."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'ferkit[serve]'")
pytest.importorskip("httpx", reason="needs the serve extra: pip install 'ferkit[serve]'")

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import ASSETS, RawRequest, jpeg_bytes, multipart, photo_640x480, running  # noqa: E402

CONCURRENCY, QUEUE, BODY_TIMEOUT, UPLOAD_MB = 1, 2, 3, 8
CAPACITY = CONCURRENCY + QUEUE
MiB = 2**20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    args = ["--model", "fast", "--concurrency", str(CONCURRENCY), "--max-queue", str(QUEUE), "--max-batch", "64",
            "--max-upload-mb", str(UPLOAD_MB), "--body-timeout", str(BODY_TIMEOUT)]
    with running(args, tmp_path_factory.mktemp("serve") / "server.log") as srv:
        yield srv
        assert "Traceback" not in srv.log(), srv.log()


def _idle(server) -> dict:
    h = server.wait_health(lambda h: h["pending"] == 0)
    assert h["pending"] == 0, h
    return h


def _stalled(server, n: int, size: int, sent: int, marker: str) -> list[RawRequest]:
    """n raw image uploads declaring ``size`` bytes, each sending ``sent`` of them and then nothing."""
    out = []
    for _ in range(n):
        r = RawRequest(server.port, f"/v1/emotions?{marker}", "image/jpeg", size)
        if sent:
            r.send(b"\xff" * sent)
        out.append(r)
    return out


def test_a_full_server_refuses_before_reading_and_stalled_bodies_time_out(server):
    _idle(server)
    stalled = _stalled(server, CAPACITY, 6 * MiB, MiB, "min_face=41")
    h = server.wait_health(lambda h: h.get("receiving") == CAPACITY)
    # bodies still arriving take their place in the queue at once (they used to be invisible: pending 0)
    assert h["pending"] == CAPACITY and h.get("receiving") == CAPACITY, h
    # the next request is refused from its headers alone: it never has to send its 6 MiB
    t0 = time.monotonic()
    late = RawRequest(server.port, "/v1/emotions?min_face=42", "image/jpeg", 6 * MiB)
    answer = late.answer(timeout=5)
    late.close()
    assert answer is not None, "no answer to a request the full server should refuse without reading it"
    assert answer[0] == 503 and json.loads(answer[1])["error"] == "busy", answer
    assert time.monotonic() - t0 < 3
    # the stalled uploads are answered 408 once --body-timeout has passed, and free their places
    answers = [r.answer(timeout=BODY_TIMEOUT + 10) for r in stalled]
    for r in stalled:
        r.close()
    assert all(a is not None and a[0] == 408 for a in answers), answers
    assert all(json.loads(a[1])["error"] == "body_timeout" for a in answers)
    assert time.monotonic() - t0 < BODY_TIMEOUT + 8
    h = _idle(server)
    assert h["receiving"] == 0 and h["timed_out"] >= CAPACITY and h["refused"] >= 1
    log = server.log()
    assert len(re.findall(r"POST /v1/emotions\?min_face=41 408 ", log)) == CAPACITY
    assert re.search(r"POST /v1/emotions\?min_face=42 503 ", log)


def test_stalled_uploads_hold_no_more_memory_than_the_queue_allows(server):
    """20 raw uploads of 7.5 MiB stalled one byte before their end: only CAPACITY of them are read (the rest get
    503 from their headers), so the server holds about CAPACITY x 7.5 MiB, not 20 x (it held 655 MB for 20 x
    38 MiB, with /healthz at pending 0)."""
    _idle(server)
    size, n = int(7.5 * MiB), 20
    rss0 = server.rss_mb()
    reqs, refused = [], 0
    for _ in range(n):
        r = RawRequest(server.port, "/v1/emotions?min_face=43", "image/jpeg", size)
        early = r.answer(timeout=0.3)
        if early is not None:  # refused from its headers: the body is never sent
            refused += 1
            assert early[0] == 503, early
            r.close()
            continue
        try:
            r.send(b"\xff" * (size - 1))
        except ConnectionError:  # refused while sending (a slow answer): the server closed the connection
            late = r.answer(timeout=5)
            assert late is not None and late[0] == 503, late
            refused += 1
            r.close()
            continue
        reqs.append(r)
    h = server.health()
    grown = server.rss_mb() - rss0
    for r in reqs:
        r.close()
    assert refused == n - CAPACITY and h["pending"] == CAPACITY, (refused, h)
    # what CAPACITY bodies take, with room for the allocator; buffering all 20 would be 150 MiB
    assert grown < CAPACITY * size / MiB + 25, f"RSS grew {grown:.0f} MiB"
    _idle(server)


def test_work_of_clients_that_went_away_is_dropped(server):
    """A batch being analysed and two images waiting behind it: their clients disconnect, the batch stops
    before its next image and the two never run (they used to run to the end, for nobody)."""
    h0 = _idle(server)
    frame = jpeg_bytes(photo_640x480())
    body = multipart("files", [(f"p{i}.jpg", frame) for i in range(64)])
    batch = RawRequest(server.port, "/v1/emotions/batch?min_face=44", "multipart/form-data; "
                       "boundary=ferkit-test-boundary", len(body))
    batch.send(body)
    h = server.wait_health(lambda h: h["pending"] == 1 and h["receiving"] == 0)
    assert h["pending"] == 1 and h["receiving"] == 0, h  # the batch is being analysed
    one = (ASSETS / "astronaut.jpg").read_bytes()
    waiting = [RawRequest(server.port, "/v1/emotions?min_face=45", "image/jpeg", len(one)) for _ in range(2)]
    for r in waiting:
        r.send(one)
    h = server.wait_health(lambda h: h["pending"] == 3 and h["receiving"] == 0)
    assert h["pending"] == 3 and h["receiving"] == 0, h
    assert h["done"] == h0["done"], "the batch finished before its client left: make it longer"
    t0 = time.monotonic()
    for r in [batch, *waiting]:
        r.close()
    h = _idle(server)
    assert time.monotonic() - t0 < 10  # the batch stopped: 64 images take longer than that here
    assert h["dropped"] - h0["dropped"] == 3, h
    assert h["done"] == h0["done"], h  # no job ran to its end
    log = server.log()
    assert re.search(r"POST /v1/emotions/batch\?min_face=44 499 ", log)
    assert len(re.findall(r"POST /v1/emotions\?min_face=45 499 ", log)) == 2
    assert not re.search(r"min_face=4[45] 200 ", log)
    # and the server goes on as before
    ok = server_post(server, one)
    assert ok.status_code == 200 and len(ok.json()["faces"]) == 1


def test_a_client_that_leaves_mid_upload_is_logged_not_a_traceback(server):
    _idle(server)
    r = RawRequest(server.port, "/v1/emotions?min_face=46", "image/jpeg", 2 * MiB)
    r.send(b"\xff" * 1000)
    server.wait_health(lambda h: h["receiving"] == 1)
    r.close()
    _idle(server)
    log = server.log()
    assert re.search(r"POST /v1/emotions\?min_face=46 499 ", log), log[-2000:]
    assert "Traceback" not in log and "ClientDisconnect" not in log


def server_post(server, data: bytes):
    import httpx

    return httpx.post(server.url + "/v1/emotions", content=data, headers={"content-type": "image/jpeg"}, timeout=60)
