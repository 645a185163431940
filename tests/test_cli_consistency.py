"""Issue 15: the shipped models first-class without torch, errors that point to the fix, API value types."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ferkit.cli import main
from ferkit.emotions import EMOTIONS

REPO = Path(__file__).resolve().parents[1]
# runs ferkit's CLI in a fresh interpreter where `import torch` fails, as on a runtime-only install
NO_TORCH = ("import sys; sys.modules['torch'] = None; from ferkit.cli import main; "
            "rc = main(sys.argv[1:]); assert 'torch' not in sys.modules or sys.modules['torch'] is None; sys.exit(rc)")


def run_without_torch(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env_src = str(REPO / "src")
    import os

    env = dict(os.environ, PYTHONPATH=env_src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", NO_TORCH, *argv], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_models_lists_shipped_without_torch():
    r = run_without_torch("models")
    assert r.returncode == 0, r.stderr
    for name, file in (("default", "ferkit-default.onnx"), ("fast", "ferkit-fast.onnx")):
        line = next(ln for ln in r.stdout.splitlines() if ln.split()[:2] == [name, file])
        measured = json.loads((REPO / "src" / "ferkit" / "weights" / "headline.json").read_text())["models"][name]
        assert "MB" in line and f"{100 * measured['private_test']:.2f}%" in line
        assert f"{measured['faces_per_second']:.0f}" in line.split()
    assert "torch is not installed" in r.stdout


def test_models_json_has_shipped_and_architectures(capsys):
    assert main(["models", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    shipped = {m["name"]: m for m in doc["shipped"]}
    from ferkit.weights import MODELS, model_path

    assert set(shipped) == set(MODELS) and {"default", "fast", "ferplus"} <= set(shipped)
    import onnxruntime as ort

    for name in shipped:  # what the file itself says, whatever the shipped choice is
        meta = ort.InferenceSession(str(model_path(name)), providers=["CPUExecutionProvider"]) \
            .get_modelmeta().custom_metadata_map
        assert shipped[name]["tta"] == meta.get("tta", "none")
        assert shipped[name]["members"] == json.loads(meta.get("members", "[]"))
    assert len(shipped["fast"]["members"]) == 1 and shipped["default"]["tta"] != "none"  # one network; an ensemble
    assert shipped["default"]["size_mb"] > shipped["fast"]["size_mb"] > 1
    assert "seed" in {a["name"] for a in doc["architectures"]}


def _unprefixed_test_folder(root: Path, fer_root: Path, per_class: int = 2) -> int:
    """A Kaggle-style dataset whose test/ file names carry no FER2013 prefix (as most Kaggle copies)."""
    n = 0
    for emo in EMOTIONS:
        files = sorted((fer_root / "test" / emo).iterdir())[:per_class]
        for i, f in enumerate(files):
            dst = root / "test" / emo / f"{emo}_{i}.png"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst)
            n += 1
    return n


def test_evaluate_shipped_default_without_torch_picks_test_split(tmp_path, fer_root):
    data = tmp_path / "kaggle"
    n = _unprefixed_test_folder(data, fer_root)
    r = run_without_torch("evaluate", "default", "--data", str(data), "--out", str(tmp_path / "rep"),
                          "--json", str(tmp_path / "rep.json"))
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]  # which images were scored, and why (issue 20 item 15)
    assert first == f"scored {n} images: every image in {data / 'test'} (split test; auto: the test split)"
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["split"] == "test" and rep["n"] == n and rep["model"] == "ferkit-default.onnx"
    assert int(np.asarray(rep["confusion_matrix"]).sum()) == n
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["accuracy"] == rep["accuracy"]
    assert (tmp_path / "rep" / "confusion.png").stat().st_size > 0
    assert "accuracy" in r.stdout and "report:" in r.stdout


def test_evaluate_private_split_without_prefixes_suggests_split_test(tmp_path, fer_root, capsys):
    data = tmp_path / "kaggle"
    _unprefixed_test_folder(data, fer_root, per_class=1)
    assert main(["evaluate", "fast", "--data", str(data), "--split", "private", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "PrivateTest_" in err and "--split test" in err and str(data) in err


def test_evaluate_onnx_refuses_checkpoint_only_options(tmp_path, fer_root, capsys):
    assert main(["evaluate", "fast", "--data", str(fer_root), "--tta", "flip"]) == 2
    assert "--tta" in capsys.readouterr().err


def test_predict_with_a_checkpoint_says_export_first(tmp_path, capsys):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"not onnx")
    rc = main(["predict", str(REPO / "tests" / "assets" / "coffee.jpg"), "--model", str(ckpt)])
    err = capsys.readouterr().err
    assert rc == 2 and "export it first" in err and f"ferkit export {ckpt}" in err


@pytest.mark.parametrize("argv, flag", [
    (["export", "x.pt", "--out", "y.onnx", "--temperature", "high"], "--temperature"),
])
def test_bad_values_name_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and "could not convert" not in err


def test_data_without_subcommand_names_the_choices(capsys):
    with pytest.raises(SystemExit):
        main(["data"])
    err = capsys.readouterr().err
    assert "{info,audit}" in err and "data_cmd" not in err


# --------------------------------------------------------------------------- API value types


def test_face_and_prediction_compare_and_hash_by_value():
    from ferkit.recognizer import Face, Prediction

    p = np.array([0.1, 0, 0, 0.6, 0.1, 0.1, 0.1], np.float32)
    a, b = Prediction.from_probs(p), Prediction.from_probs(p.copy())
    c = Prediction.from_probs(np.roll(p, 1))
    assert a == b and hash(a) == hash(b) and a != c and len({a, b, c}) == 2
    assert a.label == "happy" and not a.probs.flags.writeable
    f1 = Face((1, 2, 30, 30), 0.9, a.label, a.confidence, a.probs)
    f2 = Face((1, 2, 30, 30), 0.9, b.label, b.confidence, b.probs)
    f3 = Face((1, 2, 31, 30), 0.9, b.label, b.confidence, b.probs)
    assert f1 == f2 and hash(f1) == hash(f2) and f1 != f3 and f1 != a
    assert f1.prediction == a and {f1: "x"}[f2] == "x"


def test_real_detections_are_equal_values():
    from ferkit.recognizer import Recognizer

    r = Recognizer(model="fast", detector="haar")
    one, two = r.detect(REPO / "tests" / "assets" / "astronaut.jpg"), r.detect(REPO / "tests" / "assets" /
                                                                                 "astronaut.jpg")
    assert one and one == two and set(one) == set(two)


def test_api_documents_itself():
    import ferkit
    from ferkit.recognizer import Face, Prediction, Recognizer

    for obj in (Recognizer.__init__, Face, Prediction, Face.as_dict, Prediction.as_dict):
        assert obj.__doc__ and len(obj.__doc__) > 40, obj
    for word in ("default", "fast", ".onnx", "auto", "full", "max_side"):
        assert word in Recognizer.__init__.__doc__
    assert "Recognizer" in ferkit.__all__ and "Recognizer" in dir(ferkit)
    assert (REPO / "src" / "ferkit" / "py.typed").is_file()
    assert '"py.typed"' in (REPO / "pyproject.toml").read_text()


def test_package_import_and_recognizer_need_no_torch():
    code = ("import sys; sys.modules['torch'] = None; import ferkit; from ferkit import Recognizer; "
            "print(Recognizer(model='fast', detector='full').classify(__import__('numpy').zeros((48, 48), 'uint8'))"
            ".label in ferkit.EMOTIONS)")
    import os

    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr


# --------------------------------------------------------------------------- one flag convention


def test_json_flag_is_one_convention_and_old_spellings_still_parse():
    from ferkit.cli import build_parser

    parser = build_parser()
    for argv in (["video", "c.mp4"], ["data", "audit", "d"], ["evaluate", "fast", "--data", "d"], ["models"]):
        assert parser.parse_args([*argv, "--json"]).json == "-"
        assert parser.parse_args([*argv, "--json", "r.json"]).json == "r.json"
        assert parser.parse_args(argv).json is None
    a, b = parser.parse_args(["video", "c.mp4", "--max-side", "200"]), parser.parse_args(
        ["video", "c.mp4", "--detect-size", "200"])
    assert a.detect_size == b.detect_size == 200
    assert parser.parse_args(["train", "--out", "x"]).out_dir == parser.parse_args(["train", "--out-dir", "x"]).out_dir
    for cmd in (["video", "c.mp4"], ["predict", "a.jpg"]):
        ns = parser.parse_args([*cmd, "-q", "--no-progress"])
        assert ns.quiet and ns.progress is False


def test_video_and_audit_print_json_on_stdout(tmp_path, kaggle_copy, capsys):
    import cv2

    img = cv2.resize(cv2.imread(str(REPO / "tests" / "assets" / "astronaut.jpg")), (240, 240))
    clip = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (240, 240))
    for _ in range(6):
        vw.write(img)
    vw.release()
    assert main(["video", str(clip), "--json", "--model", "fast", "--min-face", "40"]) == 0
    doc = json.loads(capsys.readouterr().out)  # stdout is the JSON alone
    assert doc["frames"] == 6 and len(doc["tracks"]) >= 1
    root = kaggle_copy(tmp_path / "ds", per_class=1)
    assert main(["data", "audit", str(root), "--json", "-"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["splits"]) == {"train", "public", "private"}


# --------------------------------------------------------------------------- noise


def test_export_prints_no_tracer_warning(tmp_path):
    import os

    code = ("import sys; from ferkit.models import create_model; from ferkit.checkpoint import atomic_torch_save, "
            "FORMAT; from ferkit.emotions import EMOTIONS; from ferkit.cli import main; "
            "atomic_torch_save({'format': FORMAT, 'model': 'fernet_s', 'labels': list(EMOTIONS), "
            "'state_dict': create_model('fernet_s').state_dict()}, sys.argv[1]); "
            "sys.exit(main(['export', sys.argv[1], '--out', sys.argv[2], '--tta', 'scale-rot']))")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.pt"), str(tmp_path / "m.onnx")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and (tmp_path / "m.onnx").stat().st_size > 0


def test_predict_table_header_names_every_emotion(capsys):
    assert main(["predict", str(REPO / "tests" / "assets" / "astronaut.jpg"), "--model", "fast"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[-len(EMOTIONS):] == list(EMOTIONS)


def test_predict_json_is_one_object_per_image_to_stdout_or_file(tmp_path, capsys):
    from ferkit.commands.predict import JSON_SCHEMA

    assets = REPO / "tests" / "assets"
    missing = tmp_path / "gone.jpg"
    assert main(["predict", str(assets), str(missing), "--json", "--model", "fast"]) == 1
    out = capsys.readouterr().out.splitlines()
    docs = {Path(d["file"]).name: d for d in map(json.loads, out)}  # stdout is the JSON lines alone
    assert set(docs) == {"astronaut.jpg", "camera.jpg", "coffee.jpg", "gone.jpg"}
    assert all(d["schema"] == JSON_SCHEMA and isinstance(d["faces"], list) for d in docs.values())
    assert docs["gone.jpg"]["error"] and docs["gone.jpg"]["faces"] == []
    face = docs["astronaut.jpg"]["faces"][0]
    assert face["face"] == 0 and set(face) >= {"box", "score", "label", "confidence", "probs"}
    # the same lines to a file; the table stays on stdout
    dest = tmp_path / "r.jsonl"
    assert main(["predict", str(assets), "--json", str(dest), "--model", "fast"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("file") and [json.loads(s)["file"] for s in dest.read_text().splitlines()] == [
        d["file"] for d in map(json.loads, out) if not d["error"]]
    with pytest.raises(SystemExit):
        main(["predict", "--json", str(assets / "coffee.jpg"), str(assets / "camera.jpg")])
    assert "argument --json" in capsys.readouterr().err and (assets / "coffee.jpg").stat().st_size > 1000


def test_help_needs_no_torch_and_train_help_shows_trainconfig_defaults(capsys):
    r = run_without_torch("train", "--help")
    assert r.returncode == 0 and "--max-steps" in r.stdout, r.stderr
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    from ferkit.train import TrainConfig

    assert f"passes over the training images (default: {TrainConfig().epochs})" in text
    assert "configs/seed.yaml" in text
