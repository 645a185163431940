"""A Keras model config (``model.to_json()``, ``model_config``, ``config.json``) -> its input shape and
its layers in order.

Sequential models (Keras 2 and 3 configs, and the old list form) and Functional models whose layers form
one chain (one input, each layer fed by the one before, one output) are read; anything with branches,
several inputs or shared layers is refused with the layer that breaks the chain.
"""

from __future__ import annotations


class KerasFileError(ValueError):
    """A Keras file that ferkit cannot read or convert; the message starts with the file."""


_INPUT = "InputLayer"
# layers the converter handles (ferkit.keras.onnx_graph); the first ones are identities at inference
IDENTITY = ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
            "ActivityRegularization")
SUPPORTED = ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
             "Flatten", "Dense", "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "Softmax", "Rescaling",
             "ZeroPadding2D") + IDENTITY
ALIASES = {"MaxPool2D": "MaxPooling2D", "AvgPool2D": "AveragePooling2D", "GlobalAvgPool2D": "GlobalAveragePooling2D",
           "GlobalMaxPool2D": "GlobalMaxPooling2D", "Convolution2D": "Conv2D"}


def _shape_of_input(conf: dict) -> list | None:
    for key in ("batch_shape", "batch_input_shape"):
        if conf.get(key):
            return list(conf[key])[1:]
    if conf.get("input_shape"):
        return list(conf["input_shape"])
    return None


def _layer_entries(cfg: dict, where: str) -> tuple[str, list[dict], dict]:
    top = cfg.get("class_name")
    inner = cfg.get("config", {})
    if isinstance(inner, list):  # Keras 2.0-2.2 Sequential: the config is the layer list itself
        return top, inner, {}
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        raise KerasFileError(f"{where}: model config of class {top!r} has no layer list")
    return top, inner["layers"], inner


def _inbound_names(node) -> list[str]:
    """Names of the layers feeding one inbound node (Keras 2 list form or Keras 3 dict form)."""
    names: list[str] = []

    def walk(x):
        if isinstance(x, dict):
            hist = x.get("config", {}).get("keras_history") if x.get("class_name") == "__keras_tensor__" else None
            if hist:
                names.append(hist[0])
                return
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            if len(x) >= 3 and isinstance(x[0], str) and isinstance(x[1], int):  # Keras 2: [name, node, index, kw]
                names.append(x[0])
                return
            for v in x:
                walk(v)

    walk(node)
    return names


def _functional_chain(layers: list[dict], inner: dict, where: str) -> list[dict]:
    by_name = {entry.get("name") or entry.get("config", {}).get("name"): entry for entry in layers}
    ins, outs = inner.get("input_layers") or [], inner.get("output_layers") or []
    ins = [ins] if ins and isinstance(ins[0], str) else ins
    outs = [outs] if outs and isinstance(outs[0], str) else outs
    if len(ins) != 1 or len(outs) != 1:
        raise KerasFileError(f"{where}: a model with {len(ins)} inputs and {len(outs)} outputs; ferkit reads "
                             "models with one image input and one output")
    chain, name, seen = [], outs[0][0], set()
    while True:
        entry = by_name.get(name)
        if entry is None:
            raise KerasFileError(f"{where}: layer {name!r} is referenced but not defined")
        if name in seen:
            raise KerasFileError(f"{where}: layer {name!r} is used twice (a cycle or a shared layer)")
        seen.add(name)
        chain.append(entry)
        if entry.get("class_name") == _INPUT:
            break
        nodes = entry.get("inbound_nodes") or []
        feeds = _inbound_names(nodes[0]) if len(nodes) == 1 else []
        if len(nodes) != 1 or len(feeds) != 1:
            raise KerasFileError(f"{where}: layer {name!r} ({entry.get('class_name')}) takes {len(feeds)} inputs "
                                 f"over {len(nodes)} calls; ferkit reads models whose layers form one chain")
        name = feeds[0]
    unused = [n for n in by_name if n not in seen]
    if unused:
        raise KerasFileError(f"{where}: layers {', '.join(map(str, unused))} are not on the path from the input "
                             "to the output (branches are not supported)")
    return chain[::-1]


def layer_chain(cfg: dict, where: str) -> tuple[tuple, list[tuple[str, str, dict]]]:
    """(input shape (H, W, C) as in the file, [(class name, layer name, layer config), ...]) without the
    input layer. Raises KerasFileError for a model that is not one chain of layers."""
    top, layers, inner = _layer_entries(cfg, where)
    if top in ("Functional", "Model"):
        layers = _functional_chain(layers, inner, where)
    elif top != "Sequential":
        raise KerasFileError(f"{where}: a {top!r} model; ferkit reads Sequential models and chain-shaped "
                             "Functional models")
    shape = None
    chain = []
    for entry in layers:
        kind, conf = entry.get("class_name"), entry.get("config") or {}
        if not isinstance(conf, dict):
            raise KerasFileError(f"{where}: layer of class {kind!r} has no config")
        if kind == _INPUT:
            shape = shape or _shape_of_input(conf)
            continue
        if shape is None and not chain:
            shape = _shape_of_input(conf)  # Keras 2: the first layer carries batch_input_shape
        name = str(conf.get("name", entry.get("name", kind)))
        kind = ALIASES.get(kind, kind)
        if kind not in SUPPORTED:
            raise KerasFileError(f"{where}: layer {name!r} of type {kind} is not supported (supported: "
                                 f"{', '.join(SUPPORTED)})")
        chain.append((str(kind), name, conf))
    if shape is None and inner.get("build_input_shape"):
        shape = list(inner["build_input_shape"])[1:]
    if shape is None and layers:
        build = (layers[0].get("build_config") or {}).get("input_shape")
        shape = list(build)[1:] if build else None
    if shape is None:
        raise KerasFileError(f"{where}: the model config states no input shape")
    if not chain:
        raise KerasFileError(f"{where}: the model has no layers")
    return tuple(shape), chain
