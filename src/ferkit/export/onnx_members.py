"""The networks inside an exported ferkit ONNX file, back as torch state dicts (export room: torch allowed).

Batch norm was folded into the convolutions at export, so each conv gets the folded weight and each
BatchNorm2d becomes the identity carrying the folded bias (running_var = 1 - eps, so 1 / sqrt(var + eps)
is exactly 1). Weight storage nodes (int8 + Cast + Mul, float16 + Cast, and the weights' DequantizeLinear of int8 QDQ
files) are evaluated with numpy, giving the float32 tensors onnxruntime computes with (for a QDQ file: the
int8-rounded weights, without the int8 rounding of activations). Used by scripts/onnx_members.py and the tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def float_weights(model) -> dict[str, np.ndarray]:
    """Every initializer and every tensor rebuilt from initializers by Cast/Mul (weight storage), float32."""
    import onnx
    from onnx import numpy_helper

    vals = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if not all(i in vals for i in n.input):
            continue
        if n.op_type == "Cast":
            to = onnx.helper.tensor_dtype_to_np_dtype(next(a.i for a in n.attribute if a.name == "to"))
            vals[n.output[0]] = vals[n.input[0]].astype(to)
        elif n.op_type == "Mul":
            vals[n.output[0]] = (vals[n.input[0]] * vals[n.input[1]]).astype(np.float32)
        elif n.op_type == "DequantizeLinear":  # int8 QDQ files: per-tensor or per-axis scale and zero point
            x = vals[n.input[0]].astype(np.float32)
            scale = vals[n.input[1]].astype(np.float32)
            zero = vals[n.input[2]].astype(np.float32) if len(n.input) > 2 and n.input[2] else np.float32(0)
            if scale.ndim == 1 and scale.size > 1:
                axis = next((a.i for a in n.attribute if a.name == "axis"), 1) % x.ndim
                shape = [1] * x.ndim
                shape[axis] = scale.size
                scale, zero = scale.reshape(shape), np.reshape(zero, shape) if np.ndim(zero) else zero
            vals[n.output[0]] = ((x - zero) * scale).astype(np.float32)
    return vals


def member_states(path: str | Path) -> tuple[list[dict], dict]:
    """(state dicts of fernet-style VGG members, metadata) from an exported ferkit ONNX file."""
    import onnx

    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    vals = float_weights(model)
    eps = 1e-5
    states: dict[int, dict] = {}
    for n in model.graph.node:
        m = re.match(r"/members\.(\d+)/(features/features\.(\d+)/.*Conv|head/head\.(\d+)/Gemm)$", n.name)
        if not m:
            continue
        sd = states.setdefault(int(m.group(1)), {})
        w, b = vals[n.input[1]].astype(np.float32), vals[n.input[2]].astype(np.float32)
        if n.op_type == "Conv":
            k = f"features.{m.group(3)}"
            c = w.shape[0]
            sd[f"{k}.0.weight"] = w
            sd[f"{k}.1.weight"] = np.ones(c, np.float32)
            sd[f"{k}.1.bias"] = b
            sd[f"{k}.1.running_mean"] = np.zeros(c, np.float32)
            sd[f"{k}.1.running_var"] = np.full(c, 1 - eps, np.float32)
            sd[f"{k}.1.num_batches_tracked"] = np.array(0, np.int64)
        else:
            sd[f"head.{m.group(4)}.weight"] = w
            sd[f"head.{m.group(4)}.bias"] = b
    return [states[i] for i in sorted(states)], meta


def load_members(path: str | Path):
    """(list of eval-mode torch members, metadata) of an exported ferkit ONNX file."""
    import json

    import torch

    from ..models import create_model

    states, meta = member_states(path)
    names = json.loads(meta.get("members", "[]"))
    members = []
    for name, sd in zip(names, states, strict=True):
        m = create_model(name)
        m.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()})
        members.append(m.eval())
    return members, meta
