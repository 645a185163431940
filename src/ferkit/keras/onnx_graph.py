"""A :class:`~ferkit.keras.reader.KerasModel` -> an ONNX graph under ferkit's contract (``onnx`` helper API).

The graph takes ``pixels`` N x 1 x 48 x 48 float32 raw gray 0..255 and returns ``probs`` N x 7 in
:data:`ferkit.emotions.EMOTIONS` order. In between, in this order:

1. the input scale the Keras model was trained with (the notebook's ``x / 255`` unless the model starts with
   its own ``Rescaling`` layer, then raw pixels; ``input_scale=`` overrides: ``0..1``, ``0..255``,
   ``-1..1`` or a factor);
2. a bilinear resize when the model was made for another size than 48 x 48, and the gray face repeated in
   three channels for a colour model;
3. the layers, computed channels-first (NCHW): kernels transposed once here, ``padding="same"`` turned into
   the explicit (TensorFlow-style, extra at the end) pads, and a transpose to channels-last before
   ``Flatten`` so the first ``Dense`` layer sees Keras's (h, w, c) order;
4. a softmax when the model ends in logits, and a reordering when its classes are not in ferkit's order.

Anything outside :data:`SUPPORTED` (or a setting of a supported layer that is not handled) raises
:class:`KerasFileError` naming the file and the layer; weights whose shapes do not fit the config too.
"""

from __future__ import annotations

import math

import numpy as np

from ..emotions import EMOTIONS, FER2013_CSV_ORDER, canonical
from .reader import KerasLayer, KerasModel
from .topology import IDENTITY, SUPPORTED, KerasFileError

SIZE = 48
OPSET = 17
IR_VERSION = 8  # opset 17's IR: onnxruntime >= 1.16 (ferkit's floor) reads it
CONVERTER = "ferkit.keras/1"
_SIMPLE_ACT = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "elu": "Elu", "selu": "Selu",
               "softplus": "Softplus", "softsign": "Softsign", "exponential": "Exp"}
ACTIVATIONS = ("linear", "softmax", "relu6", "swish", "silu", *_SIMPLE_ACT)
INPUT_SCALES = {"0..1": (1 / 255.0, 0.0, "x / 255 (0..1)"), "0..255": (1.0, 0.0, "raw pixels (0..255)"),
                "-1..1": (1 / 127.5, -1.0, "x / 127.5 - 1 (-1..1)")}
LABEL_ORDERS = {"sorted": EMOTIONS, "notebook": EMOTIONS, "fer2013": FER2013_CSV_ORDER}


def parse_input_scale(spec: str | float) -> tuple[float, float, str]:
    """'0..1' | '0..255' | '-1..1' | a factor -> (multiply, add, description)."""
    if isinstance(spec, str) and spec in INPUT_SCALES:
        return INPUT_SCALES[spec]
    try:
        num, _, den = str(spec).partition("/")  # "1/255" or "0.5"
        f = float(num) / (float(den) if den else 1.0)
    except (ValueError, ZeroDivisionError) as e:
        raise ValueError(f"input scale {spec!r}: choose {', '.join(INPUT_SCALES)} or a factor such as 1/255") from e
    if not math.isfinite(f) or f == 0:
        raise ValueError(f"input scale {spec!r}: must be a finite, non-zero factor")
    return f, 0.0, f"x * {f:g}"


def parse_labels(spec, where: str = "labels") -> tuple[str, ...]:
    """'sorted' | 'fer2013' | 'a,b,c,...' | a list -> the 7 emotion names in the model's output order."""
    if isinstance(spec, str) and spec in LABEL_ORDERS:
        return LABEL_ORDERS[spec]
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s) for s in spec]
    canon = [canonical(n) for n in names]
    if len(names) != len(EMOTIONS) or None in canon or sorted(canon) != sorted(EMOTIONS):
        raise KerasFileError(f"{where}: labels {names} are not the 7 emotions ({', '.join(EMOTIONS)}) in some "
                             f"order; name them (comma-separated), or 'sorted' / 'fer2013'")
    return tuple(canon)


class _Graph:
    """Nodes and initializers of the graph being built, with unique names."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits, self._n = [], [], 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, arr, base: str) -> str:
        name = self.name(base)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(self, op: str, inputs: list[str], base: str | None = None, **attrs) -> str:
        out = self.name(base or op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _pair(v, what: str, layer: KerasLayer, where: str) -> tuple[int, int]:
    v = [v, v] if isinstance(v, int) else list(v)
    if len(v) != 2:
        raise KerasFileError(f"{where}: layer {layer.name!r} ({layer.kind}): {what} {v} is not 2-D")
    return int(v[0]), int(v[1])


def _out_and_pads(size: int, k: int, s: int, d: int, padding: str, layer: KerasLayer, where: str):
    span = (k - 1) * d + 1
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + span - size, 0)
        return out, total // 2, total - total // 2
    if padding != "valid":
        raise KerasFileError(f"{where}: layer {layer.name!r} ({layer.kind}): padding {padding!r} is not supported "
                             "(valid, same)")
    if size < span:
        raise KerasFileError(f"{where}: layer {layer.name!r} ({layer.kind}): its input is {size} px wide, smaller "
                             f"than its {span} px window")
    return (size - span) // s + 1, 0, 0


class _Converter:
    def __init__(self, model: KerasModel):
        self.m, self.where, self.g = model, model.source, _Graph()
        self.ending = "linear"  # what the last operation was: 'linear', 'softmax' or an activation name

    def fail(self, layer: KerasLayer, msg: str):
        raise KerasFileError(f"{self.where}: layer {layer.name!r} ({layer.kind}): {msg}")

    def weights(self, layer: KerasLayer, shapes: list[tuple]) -> list[np.ndarray]:
        got = [tuple(w.shape) for w in layer.weights]
        if got != [tuple(s) for s in shapes]:
            self.fail(layer, f"the weights do not match the layer's config: expected shapes {shapes}, the file "
                             f"holds {got or 'none'}")
        return layer.weights

    def channels_last(self, layer: KerasLayer) -> None:
        if layer.config.get("data_format") not in (None, "channels_last"):
            self.fail(layer, f"data_format {layer.config['data_format']!r}: only channels_last is supported")

    def need4d(self, layer: KerasLayer, shape: tuple) -> None:
        if len(shape) != 3:
            self.fail(layer, f"expects an image-shaped input, gets a vector of {shape[0]}")

    # ----------------------------------------------------------------- activations

    def activation(self, act, x: str, shape: tuple, layer: KerasLayer) -> str:
        if act is None or act == "linear":
            return x
        if not isinstance(act, str):
            self.fail(layer, f"activation {act!r} is not a built-in one (supported: {', '.join(ACTIVATIONS)})")
        g = self.g
        self.ending = act
        if act == "softmax":
            self.ending = "softmax" if len(shape) == 1 else "softmax-4d"
            return g.op("Softmax", [x], axis=1)
        if act in _SIMPLE_ACT:
            return g.op(_SIMPLE_ACT[act], [x])
        if act == "relu6":
            return g.op("Clip", [x, g.const(np.float32(0), "zero"), g.const(np.float32(6), "six")])
        if act in ("swish", "silu"):
            return g.op("Mul", [x, g.op("Sigmoid", [x])])
        self.fail(layer, f"activation {act!r} is not supported (supported: {', '.join(ACTIVATIONS)})")

    # ----------------------------------------------------------------- layers

    def conv(self, layer, x, shape):
        self.need4d(layer, shape)
        self.channels_last(layer)
        c = layer.config
        cin, h, w = shape
        kh, kw = _pair(c["kernel_size"], "kernel_size", layer, self.where)
        sh, sw = _pair(c.get("strides", 1), "strides", layer, self.where)
        dh, dw = _pair(c.get("dilation_rate", 1), "dilation_rate", layer, self.where)
        groups, filters = int(c.get("groups", 1) or 1), int(c["filters"])
        if cin % groups or filters % groups:
            self.fail(layer, f"groups={groups} does not divide {cin} input / {filters} output channels")
        pad = c.get("padding", "valid")
        oh, pt, pb = _out_and_pads(h, kh, sh, dh, pad, layer, self.where)
        ow, pl, pr = _out_and_pads(w, kw, sw, dw, pad, layer, self.where)
        shapes = [(kh, kw, cin // groups, filters)] + ([(filters,)] if c.get("use_bias", True) else [])
        ws = self.weights(layer, shapes)
        ins = [x, self.g.const(ws[0].transpose(3, 2, 0, 1), layer.name + "_W")]
        if len(ws) > 1:
            ins.append(self.g.const(ws[1], layer.name + "_b"))
        y = self.g.op("Conv", ins, layer.name, kernel_shape=[kh, kw], strides=[sh, sw], dilations=[dh, dw],
                      pads=[pt, pl, pb, pr], group=groups)
        self.ending = "linear"
        return self.activation(c.get("activation"), y, (filters, oh, ow), layer), (filters, oh, ow)

    def pool(self, layer, x, shape):
        self.need4d(layer, shape)
        self.channels_last(layer)
        c = layer.config
        ph, pw = _pair(c.get("pool_size", 2), "pool_size", layer, self.where)
        sh, sw = _pair(c.get("strides") or (ph, pw), "strides", layer, self.where)
        pad = c.get("padding", "valid")
        oh, pt, pb = _out_and_pads(shape[1], ph, sh, 1, pad, layer, self.where)
        ow, pl, pr = _out_and_pads(shape[2], pw, sw, 1, pad, layer, self.where)
        op = "MaxPool" if layer.kind == "MaxPooling2D" else "AveragePool"
        # TensorFlow averages the real pixels only, also where "same" pads unevenly (Keras 3's torch backend
        # counts its zero padding there; the files come from TensorFlow, so its rule is the one kept)
        extra = {"count_include_pad": 0} if op == "AveragePool" else {}
        y = self.g.op(op, [x], layer.name, kernel_shape=[ph, pw], strides=[sh, sw], pads=[pt, pl, pb, pr], **extra)
        return y, (shape[0], oh, ow)

    def global_pool(self, layer, x, shape):
        self.need4d(layer, shape)
        self.channels_last(layer)
        keep = bool(layer.config.get("keepdims", False))
        op = "ReduceMean" if layer.kind == "GlobalAveragePooling2D" else "ReduceMax"
        y = self.g.op(op, [x], layer.name, axes=[2, 3], keepdims=int(keep))
        self.ending = "linear" if op == "ReduceMean" else "max"
        return y, ((shape[0], 1, 1) if keep else (shape[0],))

    def flatten(self, layer, x, shape):
        if len(shape) == 1:
            return x, shape
        if layer.config.get("data_format") in (None, "channels_last") and shape[1:] != (1, 1):
            x = self.g.op("Transpose", [x], layer.name + "_nhwc", perm=[0, 2, 3, 1])  # Keras flattens (h, w, c)
        return self.g.op("Flatten", [x], layer.name, axis=1), (int(np.prod(shape)),)

    def dense(self, layer, x, shape):
        if len(shape) != 1:
            self.fail(layer, f"applied to a {shape[1]}x{shape[2]}x{shape[0]} feature map without Flatten first; "
                             "only Dense on a vector is supported")
        c = layer.config
        units = int(c["units"])
        ws = self.weights(layer, [(shape[0], units)] + ([(units,)] if c.get("use_bias", True) else []))
        ins = [x, self.g.const(ws[0], layer.name + "_W")] + ([self.g.const(ws[1], layer.name + "_b")] if len(ws) > 1
                                                             else [])
        y = self.g.op("Gemm", ins, layer.name)
        self.ending = "linear"
        return self.activation(c.get("activation"), y, (units,), layer), (units,)

    def affine(self, x, shape, mul, add, base: str) -> str:
        """x * mul + add per channel (mul/add: scalars or (C,) arrays)."""
        bshape = (1, -1, 1, 1) if len(shape) == 3 else (1, -1)
        mul, add = np.asarray(mul, np.float32), np.asarray(add, np.float32)
        if mul.size > 1 or np.any(mul != 1):
            x = self.g.op("Mul", [x, self.g.const(mul.reshape(bshape) if mul.size > 1 else mul, base + "_mul")])
        if add.size > 1 or np.any(add != 0):
            x = self.g.op("Add", [x, self.g.const(add.reshape(bshape) if add.size > 1 else add, base + "_add")])
        return x

    def batchnorm(self, layer, x, shape):
        c = layer.config
        axis = c.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if axis not in (-1, len(shape)):
            self.fail(layer, f"normalises axis {axis}; only the channel axis (-1) is supported")
        ch = shape[0]
        n = int(c.get("scale", True)) + int(c.get("center", True)) + 2
        ws = self.weights(layer, [(ch,)] * n)
        gamma = ws.pop(0) if c.get("scale", True) else np.ones(ch, np.float32)
        beta = ws.pop(0) if c.get("center", True) else np.zeros(ch, np.float32)
        mean, var = ws
        mul = gamma / np.sqrt(var.astype(np.float64) + float(c.get("epsilon", 1e-3)))
        self.ending = "linear"
        return self.affine(x, shape, mul, beta - mean * mul, layer.name), shape

    def act_layer(self, layer, x, shape):
        c = layer.config
        if layer.kind == "Activation":
            return self.activation(c.get("activation"), x, shape, layer), shape
        if layer.kind == "Softmax":
            axis = c.get("axis", -1)
            if axis not in (-1, len(shape)):
                self.fail(layer, f"softmax over axis {axis}; only the last axis is supported")
            return self.activation("softmax", x, shape, layer), shape
        if layer.kind == "LeakyReLU":
            slope = c.get("negative_slope", c.get("alpha", 0.3))
            self.ending = "leaky_relu"
            return self.g.op("LeakyRelu", [x], layer.name, alpha=float(slope)), shape
        # ReLU layer: max_value, negative_slope, threshold
        mx, slope, thr = c.get("max_value"), float(c.get("negative_slope", 0) or 0), float(c.get("threshold", 0) or 0)
        if thr != 0 or (slope != 0 and mx is not None):
            self.fail(layer, f"ReLU with threshold={thr}, negative_slope={slope}, max_value={mx} is not supported "
                             "(a threshold of 0, and a slope or a max value, not both)")
        self.ending = "relu"
        y = self.g.op("LeakyRelu", [x], layer.name, alpha=slope) if slope else self.g.op("Relu", [x], layer.name)
        if mx is not None:
            y = self.g.op("Clip", [y, self.g.const(np.float32(0), "zero"), self.g.const(np.float32(mx), "max")])
        return y, shape

    def rescaling(self, layer, x, shape):
        c = layer.config
        self.ending = "linear"
        return self.affine(x, shape, c.get("scale", 1.0), c.get("offset", 0.0), layer.name), shape

    def zero_pad(self, layer, x, shape):
        self.need4d(layer, shape)
        self.channels_last(layer)
        p = layer.config.get("padding", 1)
        if isinstance(p, int):
            (t, b), (l, r) = (p, p), (p, p)
        else:
            p = list(p)
            (t, b), (l, r) = [(v, v) if isinstance(v, int) else tuple(v) for v in p]
        zero = self.g.const(np.float32(0), "zero")
        pads = self.g.const(np.array([0, 0, t, l, 0, 0, b, r], np.int64), layer.name + "_pads")
        return self.g.op("Pad", [x, pads, zero], layer.name), (shape[0], shape[1] + t + b, shape[2] + l + r)

    def layer(self, layer: KerasLayer, x: str, shape: tuple):
        kind = layer.kind
        if kind in IDENTITY:
            return x, shape
        table = {"Conv2D": self.conv, "MaxPooling2D": self.pool, "AveragePooling2D": self.pool,
                 "GlobalAveragePooling2D": self.global_pool, "GlobalMaxPooling2D": self.global_pool,
                 "Flatten": self.flatten, "Dense": self.dense, "BatchNormalization": self.batchnorm,
                 "Activation": self.act_layer, "ReLU": self.act_layer, "LeakyReLU": self.act_layer,
                 "Softmax": self.act_layer, "Rescaling": self.rescaling, "ZeroPadding2D": self.zero_pad}
        if kind not in table:
            raise KerasFileError(f"{self.where}: layer {layer.name!r} of type {layer.kind} is not supported "
                                 f"(supported: {', '.join(SUPPORTED)})")
        return table[kind](layer, x, shape)
