"""Keras file -> ferkit ONNX model: the input stage, the layers (:mod:`.onnx_graph`), the output stage and
the metadata every ferkit model carries (contract, labels, members, views), plus where the Keras model's
settings came from (``keras_input_scale``, ``keras_labels``, ``keras_notes``).

Needs ``onnx`` and ``h5py`` (``pip install 'ferkit[keras]'``); never torch or TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..emotions import EMOTIONS
from .onnx_graph import CONVERTER, IR_VERSION, OPSET, SIZE, _Converter, parse_input_scale, parse_labels
from .reader import KerasModel, read_keras
from .topology import KerasFileError

# the same words as ferkit.export.CONTRACT (which imports torch); tests/test_keras.py checks they agree
CONTRACT = ("input 'pixels' N x 1 x 48 x 48 float32 raw grayscale 0..255 (normalisation inside the graph); "
            "output 'probs' N x 7 probabilities in the order " + ", ".join(EMOTIONS))


@dataclass
class Conversion:
    """What was decided while converting, for the user and the metadata."""

    input_scale: str = ""
    labels: tuple[str, ...] = EMOTIONS
    labels_source: str = ""
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"input scale: {self.input_scale}", f"labels ({self.labels_source}): {', '.join(self.labels)}"]
        return "\n".join(lines + self.notes)


def _input_stage(conv: _Converter, model: KerasModel, input_scale, info: Conversion) -> tuple[str, tuple]:
    shape = model.input_shape
    if len(shape) != 3 or shape[2] not in (1, 3):
        raise KerasFileError(f"{model.source}: input shape {tuple(shape)}: ferkit gives the model one face image "
                             "(height, width, 1 gray or 3 colour channels)")
    h, w, c = (int(v) if v is not None else None for v in shape)
    h, w = h or SIZE, w or SIZE
    if input_scale is None:
        starts_scaled = model.layers[0].kind == "Rescaling"
        spec, why = ("0..255", "the model starts with its own Rescaling layer") if starts_scaled else \
            ("0..1", "the notebook's")
    else:
        spec, why = input_scale, "as asked"
    mul, add, text = parse_input_scale(spec)
    info.input_scale = f"{text} ({why})"
    x = conv.affine("pixels", (1, SIZE, SIZE), mul, add, "input")
    if (h, w) != (SIZE, SIZE):
        scales = conv.g.const(np.array([1, 1, h / SIZE, w / SIZE], np.float32), "resize_scales")
        x = conv.g.op("Resize", [x, "", scales], "resize", mode="linear", coordinate_transformation_mode="half_pixel")
        info.notes.append(f"input: the 48x48 face is resized to the model's {h}x{w} (bilinear)")
    if c == 3:
        x = conv.g.op("Concat", [x, x, x], "gray_to_3", axis=1)
        info.notes.append("input: a colour model; it gets the gray face in all three channels")
    return x, (c, h, w)


def _output_stage(conv: _Converter, model: KerasModel, x: str, shape: tuple, info: Conversion) -> str:
    last = model.layers[-1]
    if len(shape) != 1:
        raise KerasFileError(f"{model.source}: the model ends in a {shape[1]}x{shape[2]}x{shape[0]} feature map "
                             f"(layer {last.name!r}), not a vector of class scores")
    if shape[0] != len(EMOTIONS):
        raise KerasFileError(f"{model.source}: the model has {shape[0]} outputs (layer {last.name!r}); ferkit "
                             f"needs the {len(EMOTIONS)} emotions {', '.join(EMOTIONS)}")
    if conv.ending == "linear":
        x = conv.g.op("Softmax", [x], "softmax_added", axis=1)
        info.notes.append("output: the model ends in logits; a softmax was added")
    elif conv.ending != "softmax":
        raise KerasFileError(f"{model.source}: the model ends in a {conv.ending} (layer {last.name!r}); ferkit "
                             "needs 7 probabilities (softmax) or 7 logits")
    return x


def _labels(model: KerasModel, labels, info: Conversion) -> tuple[str, ...]:
    if labels is not None:
        info.labels_source = "as asked"
        return parse_labels(labels)
    if model.labels:
        info.labels_source = "from the file"
        return parse_labels(model.labels, f"{model.source}: the labels stored in the file")
    info.labels_source = "assumed: the notebook's sorted folder order; the file names none"
    return EMOTIONS


def build_onnx(model: KerasModel, *, input_scale=None, labels=None, sha256: str | None = None):
    """(onnx.ModelProto, Conversion) for a read Keras model. Raises KerasFileError / ValueError."""
    from onnx import TensorProto, checker, helper

    info = Conversion()
    conv = _Converter(model)
    x, shape = _input_stage(conv, model, input_scale, info)
    for layer in model.layers:
        x, shape = conv.layer(layer, x, shape)
    x = _output_stage(conv, model, x, shape, info)
    order = _labels(model, labels, info)
    info.labels = order
    g = conv.g
    if order != EMOTIONS:
        perm = np.array([order.index(e) for e in EMOTIONS], np.int64)
        x = g.op("Gather", [x, g.const(perm, "to_ferkit_order")], "reorder", axis=1)
        info.notes.append(f"output: classes reordered from the model's {', '.join(order)}")
    g.nodes.append(helper.make_node("Identity", [x], ["probs"], name="probs"))
    graph = helper.make_graph(
        g.nodes, "keras_" + Path(model.files[0]).stem,
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", len(EMOTIONS)])], g.inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="ferkit", producer_version=CONVERTER)
    onnx_model.ir_version = IR_VERSION
    onnx_model.doc_string = CONTRACT
    meta = {
        "ferkit_contract": CONTRACT,
        "labels": json.dumps(list(EMOTIONS)),
        "members": json.dumps([f"keras:{Path(model.files[-1]).name}"]),
        "checkpoints": json.dumps([" + ".join(Path(f).name for f in model.files)]),
        "tta": "none", "views": "1", "temperature": "1.000000",
        "input_scale": "raw 0..255", "weights_storage": "float32", "arithmetic": "float32",
        "source": "keras", "converter": CONVERTER, "keras_format": model.format,
        "keras_version": model.keras_version or "unknown", "keras_input_scale": info.input_scale,
        "keras_labels": f"{', '.join(order)} ({info.labels_source})",
        "keras_notes": "; ".join(info.notes) or "none",
        **({"keras_sha256": sha256} if sha256 else {}),
    }
    for k, v in meta.items():
        p = onnx_model.metadata_props.add()
        p.key, p.value = k, v
    checker.check_model(onnx_model)
    return onnx_model, info


def keras_to_onnx(path: str | os.PathLike, out: str | os.PathLike, *, weights=None, input_scale=None, labels=None,
                  sha256: str | None = None) -> Conversion:
    """Convert a Keras file (or .json + weights) into the ONNX file ``out``, written atomically (nothing is
    written when reading or converting fails)."""
    model = read_keras(path, weights)
    onnx_model, info = build_onnx(model, input_scale=input_scale, labels=labels, sha256=sha256)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(onnx_model.SerializeToString())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return info
