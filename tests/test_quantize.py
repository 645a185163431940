"""int8 arithmetic on real weights and real FER2013 images: `ferkit export --quantize int8` from the shipped
`fast` network (rebuilt from its ONNX file), parity with float32, the refusal past the accuracy limit, and
the check-before-replace rule of every export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ferkit.cli import main
from ferkit.data import load_split
from ferkit.emotions import EMOTIONS
from ferkit.quantize import stratified_sample


@pytest.fixture(scope="module")
def small(tmp_path_factory, fer_root) -> Path:
    """Real images in the msambare layout: 12 train per class, 20 PublicTest + 20 PrivateTest per class."""
    root = tmp_path_factory.mktemp("fer-q")
    for emo in EMOTIONS:
        test = sorted((fer_root / "test" / emo).iterdir())
        pub = [f for f in test if f.name.startswith("PublicTest_")][:20]
        pri = [f for f in test if f.name.startswith("PrivateTest_")][:20]
        for sub, fs in (("train", sorted((fer_root / "train" / emo).iterdir())[:12]), ("test", pub + pri)):
            (root / sub / emo).mkdir(parents=True)
            for f in fs:
                shutil.copy(f, root / sub / emo / f.name)
    return root


@pytest.fixture(scope="module")
def fast_ckpt(tmp_path_factory, small) -> Path:
    """The shipped fast network (int8 QDQ file) as a float torch checkpoint (ferkit.onnx_members: the int8
    weights dequantised), checked against its file: same answers up to the int8 rounding of activations."""
    import torch

    from ferkit.checkpoint import FORMAT, VERSION, atomic_torch_save
    from ferkit.onnx_members import load_members
    from ferkit.weights import model_path

    (member,), meta = load_members(model_path("fast"))
    p = tmp_path_factory.mktemp("ck") / "fast" / "best.pt"
    name = json.loads(meta["members"])[0]  # the registered architecture the file was exported from
    atomic_torch_save({"format": FORMAT, "version": VERSION, "model": name, "labels": list(EMOTIONS),
                       "state_dict": member.state_dict()}, p)
    x = load_split(small, "private").images[:, None].astype(np.float32)
    with torch.no_grad():
        ref = torch.softmax(member(torch.from_numpy(x)) / float(meta["temperature"]), 1).numpy()
    prior = json.loads(meta.get("class_prior", "{}"))  # a decision prior inside the file (v2's fast: neutral)
    ref = ref * np.exp([prior.get(e, 0.0) for e in EMOTIONS])
    ref /= ref.sum(1, keepdims=True)
    got = ort.InferenceSession(str(model_path("fast"))).run(["probs"], {"pixels": x})[0]
    assert (ref.argmax(1) == got.argmax(1)).mean() >= 0.95 and np.abs(ref - got).max() < 0.2
    return p


def test_stratified_sample_is_seeded_and_proportional():
    labels = np.repeat(np.arange(7), [400, 40, 400, 700, 500, 480, 320])
    a, b = stratified_sample(labels, 284, seed=3), stratified_sample(labels, 284, seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, stratified_sample(labels, 284, seed=4))
    assert len(np.unique(a)) == len(a)
    counts = np.bincount(labels[a], minlength=7)
    assert counts[3] == 70 and counts[1] == 4 and abs(len(a) - 284) <= 7


def test_int8_export_agrees_with_float32_on_real_images(fast_ckpt, small, tmp_path, capsys):
    paths = {k: tmp_path / f"{k}.onnx" for k in ("float32", "int8")}
    assert main(["export", str(fast_ckpt), "--out", str(paths["float32"]), "--parity-data", str(small)]) == 0
    assert main(["export", str(fast_ckpt), "--out", str(paths["int8"]), "--parity-data", str(small),
                 "--quantize", "int8", "--quant-data", str(small), "--calib-n", "84"]) == 0
    log = capsys.readouterr().out
    assert "int8 vs float32 on PublicTest (140 images)" in log and "84 Training images" in log
    model = onnx.load(str(paths["int8"]))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["arithmetic"].startswith("int8") and json_labels(meta) == list(EMOTIONS) and meta["views"] == "1"
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert paths["int8"].stat().st_size < paths["float32"].stat().st_size / 3.5  # int8 weights
    imgs = load_split(small, "private").images
    labels = load_split(small, "private").labels
    probs = {k: ort.InferenceSession(str(p)).run(["probs"], {"pixels": imgs[:, None].astype(np.float32)})[0]
             for k, p in paths.items()}
    agree = (probs["int8"].argmax(1) == probs["float32"].argmax(1)).mean()
    assert agree >= 0.95, agree
    assert np.abs(probs["int8"] - probs["float32"]).max() < 0.2
    acc = {k: (p.argmax(1) == labels).mean() for k, p in probs.items()}
    assert acc["float32"] > 0.55 and acc["int8"] > acc["float32"] - 0.03, acc
    assert not list(tmp_path.glob(".*tmp"))


def json_labels(meta):
    return json.loads(meta["labels"])


def test_float_first_conv_keeps_the_pixel_conv_in_float32(fast_ckpt, small, tmp_path):
    """--float-first-conv: the conv that reads the pixels keeps float32 weights (no Q/DQ pair on them), every
    other conv stays int8, the metadata names the float node, and the answers agree with float32."""
    paths = {k: tmp_path / f"{k}.onnx" for k in ("float32", "int8")}
    assert main(["export", str(fast_ckpt), "--out", str(paths["float32"])]) == 0
    assert main(["export", str(fast_ckpt), "--out", str(paths["int8"]), "--quantize", "int8",
                 "--quant-data", str(small), "--calib-n", "84", "--float-first-conv"]) == 0
    model = onnx.load(str(paths["int8"]))
    meta = {p.key: p.value for p in model.metadata_props}
    made = {o: n for n in model.graph.node for o in n.output}  # tensor -> the node that makes it
    inits = {i.name: i for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    float_convs = [n for n in convs if n.input[1] in inits and inits[n.input[1]].data_type == onnx.TensorProto.FLOAT]
    assert [n.name for n in float_convs] == [meta["float_nodes"]]
    assert inits[float_convs[0].input[1]].dims[1] == 1  # the one that reads the pixels
    quantised = [n for n in convs if n not in float_convs]
    assert len(quantised) == 7 and all(made[n.input[1]].op_type == "DequantizeLinear" for n in quantised)
    x = load_split(small, "private").images[:, None].astype(np.float32)
    probs = {k: ort.InferenceSession(str(p)).run(["probs"], {"pixels": x})[0] for k, p in paths.items()}
    assert (probs["int8"].argmax(1) == probs["float32"].argmax(1)).mean() >= 0.95
    assert np.abs(probs["int8"] - probs["float32"]).max() < 0.2


def test_int8_refused_past_the_limit_and_previous_file_untouched(fast_ckpt, small, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(fast_ckpt), "--out", str(out)]) == 0
    before = out.read_bytes()
    # a limit no quantised network can meet: int8 must *gain* 50 points
    rc = main(["export", str(fast_ckpt), "--out", str(out), "--quantize", "int8", "--quant-data", str(small),
               "--calib-n", "28", "--max-drop", "-50"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "not written: int8 loses" in err and "--max-drop" in err and "unchanged" in err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temp file left


def test_failed_parity_check_leaves_previous_file(fast_ckpt, small, tmp_path, capsys, monkeypatch):
    """The check runs on a temp file next to the target; a failure never replaces the previous file."""
    from ferkit.export import export as export_module

    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous model")
    monkeypatch.setattr(export_module, "PARITY_LIMIT", {"float32": -1.0})  # any difference fails
    rc = main(["export", str(fast_ckpt), "--out", str(out), "--parity-data", str(small)])
    err = capsys.readouterr().err
    assert rc == 1 and "not written: the ONNX output differs from torch" in err
    assert out.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_quantize_needs_data_and_float32_weights(fast_ckpt, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(fast_ckpt), "--out", str(out), "--quantize", "int8"]) == 2
    assert "--quant-data" in capsys.readouterr().err
    assert main(["export", str(fast_ckpt), "--out", str(out), "--quantize", "int8", "--quant-data", "x",
                 "--weights", "int8"]) == 2
    assert not out.exists()


def test_calibration_ranges_cover_every_calibration_image(tmp_path):
    """Regression: onnxruntime's CalibMaxIntermediateOutputs option drops the batches it clears, so the
    shipped int8 files were calibrated on the last image alone. Only the first of 9 batches holds a bright
    pixel: the input's quantisation range must still reach it."""
    import torch
    from onnx import numpy_helper

    from ferkit.quantize import quantize_int8

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()).eval()
    src = tmp_path / "tiny.onnx"
    torch.onnx.export(net, (torch.zeros(2, 1, 48, 48),), str(src), input_names=["pixels"], output_names=["y"],
                      dynamic_axes={"pixels": {0: "batch"}, "y": {0: "batch"}}, opset_version=17, dynamo=False)
    images = np.random.default_rng(0).integers(0, 100, (9 * 32, 48, 48)).astype(np.uint8)
    images[0, 10, 10] = 255
    dst = tmp_path / "tiny-int8.onnx"
    quantize_int8(src, dst, images)
    model = onnx.load(str(dst))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    q_in = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "pixels")
    assert float(init[q_in.input[1]]) == pytest.approx(255 / 255, rel=1e-3)  # range 0..255 over 255 steps


def test_class_prior_is_inside_the_graph_and_said_in_the_metadata(fast_ckpt, small, tmp_path, capsys):
    """--class-prior neutral=B: the file's probabilities are the plain file's with neutral multiplied by e^B and
    renormalised (both outputs), the metadata keeps the offsets, and a wrong spelling is refused before torch."""
    plain, prior = tmp_path / "plain.onnx", tmp_path / "prior.onnx"
    assert main(["export", str(fast_ckpt), "--out", str(plain)]) == 0
    assert main(["export", str(fast_ckpt), "--out", str(prior), "--class-prior", "neutral=-0.75",
                 "--class-prior", "sad=0.25"]) == 0
    x = load_split(small, "private").images[:, None].astype(np.float32)
    got = ort.InferenceSession(str(prior)).run(None, {"pixels": x})
    ref = ort.InferenceSession(str(plain)).run(None, {"pixels": x})
    f = np.ones(7)
    f[EMOTIONS.index("neutral")], f[EMOTIONS.index("sad")] = np.exp(-0.75), np.exp(0.25)
    for g, r in zip(got, ref):
        want = r * f / (r * f).sum(1, keepdims=True)
        assert np.abs(g - want).max() < 1e-5
    assert (got[0].argmax(1) != ref[0].argmax(1)).any()  # the offsets change some answers on real faces
    meta = {p.key: p.value for p in onnx.load(str(prior)).metadata_props}
    assert json.loads(meta["class_prior"]) == {"neutral": -0.75, "sad": 0.25}
    assert "class_prior" not in {p.key for p in onnx.load(str(plain)).metadata_props}
    capsys.readouterr()
    for bad in ("calm=-1", "neutral", "neutral=x", "neutral=20"):
        with pytest.raises(SystemExit) as e:
            main(["export", str(fast_ckpt), "--out", str(tmp_path / "bad.onnx"), "--class-prior", bad])
        assert e.value.code == 2 and "--class-prior" in capsys.readouterr().err
    assert not (tmp_path / "bad.onnx").exists()
