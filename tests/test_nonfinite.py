"""A model that outputs NaN (issue 20, item 11): export refuses it, and at run time each face it gives NaN for is
an error of its own (a library exception, an error row in `predict`, a JSON 500 from `serve`), never "angry"
with confidence NaN.

The broken models are built here: an ONNX graph (onnx.helper) whose probabilities are NaN for dark faces
(mean pixel below 100) and real for the others, and a torch checkpoint with a NaN bias. The faces are real
FER2013 crops; the server is a real `ferkit serve` on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferkit.cli import main
from ferkit.emotions import EMOTIONS
from ferkit.recognizer import NonFiniteOutput, Recognizer

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import FER, running  # noqa: E402

DARK_BELOW = 100.0  # the test model's output is NaN for faces darker than this (mean pixel value)


def _nan_model(path: Path) -> Path:
    """pixels (N,1,48,48) -> probs (N,7) = softmax(logits + sqrt(mean - 100)): NaN where the mean is below 100."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    logits = np.log(np.array([0.05, 0.05, 0.1, 0.5, 0.2, 0.05, 0.05], np.float32))
    inits = [numpy_helper.from_array(np.full((48 * 48, 7), 1 / (48 * 48), np.float32), "avg"),
             numpy_helper.from_array(np.array(DARK_BELOW, np.float32), "dark"),
             numpy_helper.from_array(logits[None], "logits")]
    nodes = [helper.make_node("Flatten", ["pixels"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "avg"], ["mean"]),
             helper.make_node("Sub", ["mean", "dark"], ["centred"]),
             helper.make_node("Sqrt", ["centred"], ["root"]),  # NaN below 100
             helper.make_node("Add", ["root", "logits"], ["z"]),
             helper.make_node("Softmax", ["z"], ["probs"], axis=1)]
    graph = helper.make_graph(nodes, "nan_for_dark_faces",
                              [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 1, 48, 48])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 7])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    p = model.metadata_props.add()
    p.key, p.value = "labels", json.dumps(list(EMOTIONS))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory) -> Path:
    return _nan_model(tmp_path_factory.mktemp("nan") / "nan.onnx")


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> dict[str, Path]:
    """A dark and a bright real FER2013 face (the model gives NaN for the dark one only)."""
    d = tmp_path_factory.mktemp("faces")
    out = {}
    for f in sorted((FER / "test" / "happy").glob("PrivateTest_*.jpg")):
        m = float(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).mean())
        key = "dark" if m < DARK_BELOW - 20 else "bright" if m > DARK_BELOW + 20 else None
        if key and key not in out:
            out[key] = d / f"{key}.jpg"
            out[key].write_bytes(f.read_bytes())
        if len(out) == 2:
            return out
    pytest.skip("no dark and bright FER2013 faces found")


def _strict_json(line: str):
    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=no_constant)


def test_the_library_raises_per_face_instead_of_saying_angry(nan_model, faces):
    rec = Recognizer(model=nan_model, detector="full")
    ok = rec.classify(faces["bright"])
    assert ok.label == "happy" and np.isfinite(ok.probs).all()
    with pytest.raises(NonFiniteOutput, match="NaN"):
        rec.classify(faces["dark"])  # was: Prediction("angry", nan)
    with pytest.raises(NonFiniteOutput):
        rec.detect(faces["dark"])
    assert rec.predict_arrays(np.zeros((1, 48, 48), np.uint8)).shape == (1, 7)  # raw arrays stay available


def test_predict_writes_an_error_row_for_the_nan_face_and_valid_json(nan_model, faces, tmp_path, capsys):
    rows, lines = tmp_path / "rows.csv", tmp_path / "faces.jsonl"
    rc = main(["predict", str(faces["bright"]), str(faces["dark"]), "--model", str(nan_model), "--no-progress",
               "--csv", str(rows), "--json", str(lines)])
    assert rc == 1  # an error happened, and it is said
    err = capsys.readouterr().err
    assert "dark.jpg: face 0" in err and "NaN" in err
    got = {Path(r["file"]).name: r for r in csv.DictReader(rows.open())}
    assert got["bright.jpg"]["status"] == "ok" and got["bright.jpg"]["label"] == "happy"
    bad = got["dark.jpg"]
    assert bad["status"].startswith("error: ") and "NaN" in bad["status"]
    assert bad["label"] == "" and bad["confidence"] == "" and bad["w"] == "48"  # the box, no label
    objs = {Path(o["file"]).name: o for o in map(_strict_json, lines.read_text().splitlines())}
    assert objs["bright.jpg"]["faces"][0]["label"] == "happy" and objs["bright.jpg"]["error"] is None
    assert objs["dark.jpg"]["faces"] == [] and "NaN" in objs["dark.jpg"]["error"]


def test_export_refuses_a_checkpoint_whose_output_is_nan(tmp_path):
    torch = pytest.importorskip("torch")
    from ferkit.checkpoint import FORMAT, VERSION, atomic_torch_save
    from ferkit.export import ExportCheckFailed, export_onnx
    from ferkit.models import create_model

    model = create_model("fernet_xxs")
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias[2] = float("nan")  # one broken weight: every output becomes NaN
    ckpt = {"format": FORMAT, "version": VERSION, "model": "fernet_xxs", "model_kwargs": {},
            "labels": list(EMOTIONS), "state_dict": model.state_dict(), "ema_state_dict": None}
    atomic_torch_save(ckpt, tmp_path / "nan.pt")
    out = tmp_path / "nan.onnx"
    out.write_bytes(b"the previous file")
    with pytest.raises(ExportCheckFailed, match="not finite"):
        export_onnx([tmp_path / "nan.pt"], out, log=lambda *a: None)
    assert out.read_bytes() == b"the previous file"  # was: written, 'parity' passed (nan > limit is False)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_serve_answers_json_500_for_the_nan_face_and_bounded_answers_for_odd_images(nan_model, faces, tmp_path):
    """One real server for three items: a NaN face (item 11: a JSON 500, per image in a batch), a 1,000,000 x 1
    PNG (item 5: was a 500 from a 2.25 TB allocation) and a float TIFF with a NaN pixel (item 12: was a
    black image, "no face", 200)."""
    import io

    httpx = pytest.importorskip("httpx", reason="needs the serve extra: pip install 'ferkit[serve]'")
    pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'ferkit[serve]'")
    from PIL import Image

    line = io.BytesIO()
    Image.fromarray(np.full((1, 1_000_000), 128, np.uint8)).save(line, format="PNG", optimize=True)
    tif = io.BytesIO()
    f = np.full((60, 60), 0.5, np.float32)
    f[7, 7] = np.nan
    Image.fromarray(f, "F").save(tif, format="TIFF")
    with running(["--model", str(nan_model), "--concurrency", "1"], tmp_path / "server.log") as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as c:
        def post(name, data, mime="image/jpeg"):
            return c.post("/v1/emotions", files={"file": (name, data, mime)})

        ok = post("bright.jpg", faces["bright"].read_bytes())
        assert ok.status_code == 200 and ok.json()["faces"][0]["label"] == "happy"
        bad = post("dark.jpg", faces["dark"].read_bytes())
        assert bad.status_code == 500, bad.text
        body = _strict_json(bad.text)
        assert body["error"] == "model_output_not_finite" and "dark.jpg" in body["detail"]
        batch = c.post("/v1/emotions/batch", files=[("files", (n, faces[n].read_bytes(), "image/jpeg"))
                                                    for n in ("bright", "dark")])
        assert batch.status_code == 200
        assert [r["status"] for r in _strict_json(batch.text)["results"]] == [200, 500]
        strip = post("line.png", line.getvalue(), "image/png")
        assert strip.status_code == 200 and strip.json()["faces"] == []
        nan_tif = post("nan.tif", tif.getvalue(), "image/tiff")
        assert nan_tif.status_code == 400 and "NaN" in nan_tif.json()["detail"], nan_tif.text
        assert c.get("/healthz").status_code == 200  # still serving
