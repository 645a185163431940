"""`ferkit serve` API against a real uvicorn on 127.0.0.1 (one server for this module), real photos and real
FER2013 crops: faces and JSON shape, batch, every 4xx case, /healthz during a batch, /v1/model, offline docs."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="needs the serve extra: pip install 'ferkit[serve]'")
pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'ferkit[serve]'")

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import ASSETS, fer_faces, jpeg_bytes, noise_png, photo_640x480, png_bomb, running  # noqa: E402

from ferkit.emotions import EMOTIONS  # noqa: E402
from ferkit.faces import list_detectors  # noqa: E402
from ferkit.recognizer import Recognizer  # noqa: E402

LIMIT_MB = 1  # a small upload limit so that "too large" is a real photo-sized file


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    # one inference at a time and one waiting: the busy (503) case can be reached on purpose
    args = ["--model", "fast", "--max-upload-mb", str(LIMIT_MB), "--max-batch", "8", "--concurrency", "1",
            "--max-queue", "1"]
    with running(args, log) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def reference():
    return Recognizer(model="fast")


def _post(client, data: bytes, name: str = "photo.jpg", params=None, mime="image/jpeg"):
    return client.post("/v1/emotions", files={"file": (name, data, mime)}, params=params or {})


def _assert_face_json(face: dict, width: int, height: int):
    assert set(face) >= {"box", "score", "label", "confidence", "probs"}
    b = face["box"]
    assert 0 <= b["x"] < width and 0 <= b["y"] < height and b["w"] > 0 and b["h"] > 0
    assert b["x"] + b["w"] <= width and b["y"] + b["h"] <= height
    assert list(face["probs"]) == list(EMOTIONS)
    assert abs(sum(face["probs"].values()) - 1) < 1e-3
    assert face["label"] == max(face["probs"], key=face["probs"].get)
    assert face["confidence"] == pytest.approx(face["probs"][face["label"]], abs=1e-6)


def test_photo_multipart_matches_the_library(client, reference):
    r = _post(client, (ASSETS / "astronaut.jpg").read_bytes(), "astronaut.jpg")
    assert r.status_code == 200, r.text
    js = r.json()
    assert js["image"] == {"width": 384, "height": 384}
    assert js["model"] == "fast" and js["detector"] == reference.detector.name
    assert len(js["faces"]) == 1
    _assert_face_json(js["faces"][0], 384, 384)
    # the same faces, boxes and probabilities as the Python API gives on the same file
    want = [f.as_dict() for f in reference.detect(ASSETS / "astronaut.jpg")]
    assert [f["box"] for f in js["faces"]] == [w["box"] for w in want]
    for got, exp in zip(js["faces"], want, strict=True):
        assert got["label"] == exp["label"] == "happy"
        np.testing.assert_allclose(list(got["probs"].values()), list(exp["probs"].values()), atol=1e-4)


def test_raw_body_no_face_and_options(client):
    r = client.post("/v1/emotions", content=(ASSETS / "coffee.jpg").read_bytes(),
                    headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert r.json()["faces"] == [] and r.json()["image"] == {"width": 320, "height": 213}
    big = jpeg_bytes(photo_640x480())
    r = client.post("/v1/emotions", content=big, headers={"content-type": "image/jpeg"},
                    params={"detector": "haar", "max_faces": 1, "min_face": 40})
    assert r.status_code == 200, r.text
    assert r.json()["detector"] == "haar" and len(r.json()["faces"]) == 1
    _assert_face_json(r.json()["faces"][0], 640, 480)


def test_face_crops_with_crop_true_match_classify(client, reference):
    files = fer_faces(6, "happy") + fer_faces(6, "surprise")
    for f in files:
        r = client.post("/v1/emotions", content=f.read_bytes(), headers={"content-type": "image/jpeg"},
                        params={"crop": "true"})
        assert r.status_code == 200, r.text
        js = r.json()
        assert js["detector"] == "full" and len(js["faces"]) == 1
        assert js["faces"][0]["box"] == {"x": 0, "y": 0, "w": 48, "h": 48}
        p = reference.classify(f)
        assert js["faces"][0]["label"] == p.label
        np.testing.assert_allclose(list(js["faces"][0]["probs"].values()), p.probs, atol=1e-4)
    # the fast model gets most of these easy ones right (real data, not a fixed answer)
    right = sum(client.post("/v1/emotions", content=f.read_bytes(), headers={"content-type": "image/jpeg"},
                            params={"crop": "true"}).json()["faces"][0]["label"] == f.parent.name for f in files)
    assert right >= 8


def test_batch_one_result_or_error_per_image(client):
    astro = (ASSETS / "astronaut.jpg").read_bytes()
    files = [("files", ("astronaut.jpg", astro, "image/jpeg")),
             ("files", ("coffee.jpg", (ASSETS / "coffee.jpg").read_bytes(), "image/jpeg")),
             ("files", ("notes.jpg", b"just some text, not a JPEG\n", "image/jpeg")),
             ("files", ("cut.jpg", astro[: len(astro) // 2], "image/jpeg"))]
    r = client.post("/v1/emotions/batch", files=files)
    assert r.status_code == 200, r.text
    js = r.json()
    assert js["images"] == 4 and js["failed"] == 2
    res = js["results"]
    assert [x["index"] for x in res] == [0, 1, 2, 3]
    assert [x["filename"] for x in res] == ["astronaut.jpg", "coffee.jpg", "notes.jpg", "cut.jpg"]
    assert [x["status"] for x in res] == [200, 200, 415, 400]
    assert len(res[0]["faces"]) == 1 and res[1]["faces"] == []
    assert res[2]["error"] == "not_an_image" and "notes.jpg" in res[2]["detail"]
    assert res[3]["error"] == "corrupt_image" and "truncated" in res[3]["detail"]


def _text_as_jpg():
    return {"files": {"file": ("notes.jpg", b"Dear diary, today I smiled.\n" * 20, "image/jpeg")}}


def _zero_bytes():
    return {"files": {"file": ("empty.jpg", b"", "image/jpeg")}}


def _truncated():
    data = (ASSETS / "astronaut.jpg").read_bytes()
    return {"files": {"file": ("truncated.jpg", data[: len(data) // 3], "image/jpeg")}}


def _bomb():
    return {"files": {"file": ("bomb.png", png_bomb(20_000, 20_000), "image/png")}}


def _too_large():
    return {"files": {"file": ("noise.png", noise_png(700), "image/png")}}  # ~1.4 MiB, a real PNG


def _too_large_raw():
    return {"content": noise_png(700), "headers": {"content-type": "image/png"}}


def _too_large_body():
    return {"content": b"\xff" * (5 * 2**20), "headers": {"content-type": "image/jpeg"}}


def _wrong_type_raw():
    return {"content": b'{"image": "astronaut.jpg"}', "headers": {"content-type": "application/json"}}


def _wrong_format():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 100, 50)).save(buf, format="ICO")
    return {"files": {"file": ("icon.ico", buf.getvalue(), "image/x-icon")}}


def _no_file_field():
    return {"data": {"note": "forgot the file"}, "files": {"other": ("a.jpg", b"x", "image/jpeg")}}


CASES = [
    ("text file named .jpg", _text_as_jpg, {}, 415, "not_an_image", "notes.jpg"),
    ("zero bytes", _zero_bytes, {}, 400, "empty_file", "empty.jpg"),
    ("truncated JPEG", _truncated, {}, 400, "corrupt_image", "truncated.jpg"),
    ("20,000 x 20,000 PNG", _bomb, {}, 413, "too_many_pixels", "bomb.png"),
    ("upload over the per-image limit (multipart)", _too_large, {}, 413, "file_too_large", "noise.png"),
    ("upload over the per-image limit (raw body)", _too_large_raw, {}, 413, "file_too_large", "body"),
    ("body over the request limit", _too_large_body, {}, 413, "request_too_large", "MiB"),
    ("wrong content type", _wrong_type_raw, {}, 415, "unsupported_media_type", "application/json"),
    ("image format not accepted", _wrong_format, {}, 415, "unsupported_image_format", "icon.ico"),
    ("no 'file' field", _no_file_field, {}, 400, "missing_file", "'file'"),
    ("unknown detector", _text_as_jpg, {"detector": "yolo9000"}, 422, "invalid_request", "detector"),
    ("max_faces 0", _text_as_jpg, {"max_faces": 0}, 422, "invalid_request", "max_faces"),
]


@pytest.mark.parametrize("what,make,params,status,code,named", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_json_4xx(client, what, make, params, status, code, named):
    r = client.post("/v1/emotions", params=params, **make())
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    js = r.json()
    assert js["error"] == code
    assert named in js["detail"]


def test_healthz_answers_while_a_batch_is_classified(client, server):
    imgs = [("files", (f"p{i}.jpg", jpeg_bytes(photo_640x480("astronaut.jpg" if i % 2 else "camera.jpg")),
                       "image/jpeg")) for i in range(8)]
    done = {}

    def send():
        t = time.perf_counter()
        done["r"] = httpx.post(server.url + "/v1/emotions/batch", files=imgs, params={"min_face": 24}, timeout=120)
        done["t"] = time.perf_counter() - t

    th = threading.Thread(target=send)
    th.start()
    seen_pending, waits = False, []
    while th.is_alive():
        t = time.perf_counter()
        h = client.get("/healthz", timeout=5)
        waits.append(time.perf_counter() - t)
        assert h.status_code == 200 and h.json()["status"] == "ok"
        seen_pending |= h.json()["pending"] >= 1
        time.sleep(0.02)
    th.join()
    assert done["r"].status_code == 200 and done["r"].json()["failed"] == 0
    assert seen_pending, "the batch finished before /healthz saw it pending"
    # /healthz never waited for the batch: every answer came much faster than the batch itself
    assert max(waits) < done["t"] / 2, (max(waits), done["t"])


def test_busy_server_answers_503_not_a_long_queue(client, server):
    slow = [("files", (f"p{i}.jpg", jpeg_bytes(photo_640x480()), "image/jpeg")) for i in range(8)]
    got = {}

    def post(key, **kw):
        got[key] = httpx.post(server.url + kw.pop("path", "/v1/emotions"), timeout=120, **kw)

    def pending_reaches(n):
        t_end = time.monotonic() + 30
        while time.monotonic() < t_end:
            if client.get("/healthz").json()["pending"] >= n:
                return True
            time.sleep(0.01)
        return False

    batch = threading.Thread(target=post, args=("batch",),
                             kwargs={"path": "/v1/emotions/batch", "files": slow, "params": {"min_face": 24}})
    batch.start()
    assert pending_reaches(1)  # the batch is being analysed (concurrency 1) ...
    one = (ASSETS / "astronaut.jpg").read_bytes()
    queued = threading.Thread(target=post, args=("queued",), kwargs={"files": {"file": ("a.jpg", one)}})
    queued.start()
    assert pending_reaches(2)  # ... one image waits (max-queue 1) ...
    refused = httpx.post(server.url + "/v1/emotions", files={"file": ("b.jpg", one)}, timeout=30)
    batch.join()
    queued.join()
    assert refused.status_code == 503, refused.text  # ... and the next one is refused at once
    assert refused.json()["error"] == "busy" and refused.headers["retry-after"] == "1"
    assert got["batch"].status_code == 200 and got["queued"].status_code == 200
    assert client.post("/v1/emotions", files={"file": ("c.jpg", one)}).status_code == 200  # and it recovers


def test_model_endpoint(client, reference):
    import hashlib

    r = client.get("/v1/model")
    assert r.status_code == 200
    js = r.json()
    assert js["name"] == "fast" and js["file"] == reference.model_path.name
    assert js["sha256"] == hashlib.sha256(reference.model_path.read_bytes()).hexdigest()
    meta = reference.session.get_modelmeta().custom_metadata_map  # what the file itself says
    assert js["labels"] == list(EMOTIONS) and js["members"] == json.loads(meta["members"]) and len(js["members"]) == 1
    assert set(js["detectors"]) == set(list_detectors())
    assert js["limits"]["max_upload_bytes"] == LIMIT_MB * 2**20 and js["limits"]["max_batch"] == 8
    assert js["limits"]["concurrency"] == 1 and js["limits"]["max_queue"] == 1
    head = js["headline"]
    assert head is not None, "no model card headline for the shipped fast model"
    # the model card's own measurements of this file (scripts/model_card.py -> scripts/model_headline.py)
    measured = json.loads((Path(__file__).parents[1] / "results" / "model-card-measurements.json").read_text())
    assert head["private_test"] == pytest.approx(measured["fast"]["private"], abs=1e-6)
    assert head["public_test"] == pytest.approx(measured["fast"]["public"], abs=1e-6)


def test_openapi_docs_and_page_load_nothing_from_the_internet(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/emotions", "/v1/emotions/batch", "/healthz", "/v1/model"} <= set(spec["paths"])
    params = {p["name"]: p for p in spec["paths"]["/v1/emotions"]["post"]["parameters"]}
    assert {"detector", "max_faces", "min_face", "crop"} <= set(params)
    body = spec["paths"]["/v1/emotions"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/jpeg" in body
    for page in ("/docs", "/"):
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html.text)
        assert refs, page
        assert not [u for u in refs if re.match(r"(https?:)?//", u)], f"{page} loads from outside: {refs}"
        for u in refs:
            if u.startswith("/"):
                assert client.get(u).status_code == 200, u
    assert "https://" not in client.get("/docs").text.split("<script>")[-1]


def test_unknown_route_and_one_log_line_per_request(client, server):
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert client.get("/healthz").status_code == 200
    log = server.log()
    assert re.search(r"127\.0\.0\.1 GET /v2/nothing 404 [\d.]+ ms", log)
    assert re.search(r"127\.0\.0\.1 POST /v1/emotions\?crop=true 200 [\d.]+ ms", log)
    assert "Traceback" not in log


def test_a_url_cannot_forge_a_log_line(client, server):
    """The log writes the path as sent: a percent-encoded line break stays %0a (it used to be decoded, and
    this URL added a line that looked like a real request)."""
    fake = "2026-12-03 09:00:00,000 ferkit.serve 127.0.0.1 POST /v1/emotions 200 1.0 ms"
    r = client.get("/x%0a" + fake.replace(" ", "%20"), params={"q": "a\r\nb"})
    assert r.status_code == 404
    client.get("/healthz")  # a line after it: the forged one would sit between the two
    lines = server.log().splitlines()
    assert not [ln for ln in lines if ln.startswith("2026-12-03 09:00:00,000")], "a URL added a log line"
    mine = [ln for ln in lines if " GET /x%0a2026-12-03%2009:00:00,000%20ferkit.serve" in ln]
    assert len(mine) == 1 and mine[0].endswith(" ms") and "?q=a%0D%0Ab 404 " in mine[0], mine


def test_request_limits_share_the_loaded_detector(client, server):
    """min_face / max_faces only filter detections: 12 distinct values load no new CenterFace session (each
    used to load one, about 30 MB: 31 values took the server from 649 MB to 1.33 GB), and each is honoured."""
    astro = (ASSETS / "astronaut.jpg").read_bytes()

    def post(**params):
        r = client.post("/v1/emotions", content=astro, headers={"content-type": "image/jpeg"}, params=params)
        assert r.status_code == 200, r.text
        return r.json()["faces"]

    side = max(post()[0]["box"]["w"], post()[0]["box"]["h"])  # the one face's longer side
    rss0 = server.rss_mb()
    for i, mf in enumerate(range(side - 6, side + 6)):
        faces = post(min_face=mf, max_faces=1 + i % 3, detector="centerface")
        assert len(faces) == (1 if mf <= side else 0), (mf, side, faces)
    grown = server.rss_mb() - rss0
    assert grown < 40, f"RSS grew {grown:.0f} MiB over 12 min_face/max_faces values"
    assert len(post(min_face=24, max_faces=1)) == 1  # and the defaults still apply afterwards


def test_busy_port_is_a_clear_error_before_any_url(tmp_path):
    """The banner printed its URL before binding: on a busy port, a URL and then uvicorn's Errno 98."""
    import os
    import socket
    import subprocess

    from serve_helpers import REPO

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        r = subprocess.run([sys.executable, "-m", "ferkit.cli", "serve", "--model", "fast", "--port", str(port)],
                           capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "http://" not in r.stderr + r.stdout, r.stderr
    assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in r.stderr
    assert "--port" in r.stderr and "Traceback" not in r.stderr
