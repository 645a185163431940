"""``ferkit models``: the shipped ONNX models (what ``--model`` takes in predict/video/webcam/evaluate/serve)
and, when torch is installed, the trainable architectures (what ``train --model`` takes)."""

from __future__ import annotations

import importlib.util

from .options import add_json, add_quiet, write_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "models", help="list the shipped models (no torch needed) and the trainable architectures",
        description="Shipped models: the ONNX files inside the package, usable by name "
                    "(--model default|fast|ferplus|fer2013) in predict, video, webcam, evaluate and serve, without "
                    "torch; accuracy and speed are the "
                    "model card's (MODEL_CARD.md, PrivateTest under FER2013's labels and the FER+ crowd's majority); "
                    "the last column says which labels each model learned. Architectures: the networks "
                    "`ferkit train --model NAME` builds (listed when torch is installed).")
    add_json(p, "both lists")
    add_quiet(p, "lists")
    p.set_defaults(func=cmd_models)


def _pct(v) -> str:
    return f"{100 * v:.2f}%" if v is not None else "-"


def architectures() -> list[dict] | None:
    """[{name, params, description}] or None without torch."""
    if importlib.util.find_spec("torch") is None:
        return None
    from ..models import count_params, create_model, describe_model, list_models

    return [{"name": n, "params": count_params(create_model(n)), "description": describe_model(n)}
            for n in list_models()]


def cmd_models(args) -> int:
    if args.quiet and not args.json:  # the lists are all it prints
        return 0
    from ..weights import shipped_info

    shipped = shipped_info()
    archs = architectures()
    if args.json:
        write_json({"shipped": shipped, "architectures": archs}, args.json)
        return 0
    print("shipped models (--model NAME; ONNX, no torch needed; numbers from MODEL_CARD.md, PrivateTest: "
          "FER2013 = the dataset's labels, FER+ = the crowd's majority, 7 classes)")
    print(f"  {'name':<9}{'file':<22}{'size':>8}{'FER2013':>9}{'FER+':>8}{'macro-F1':>10}{'GMAC/face':>11}"
          f"{'faces/s':>9}  contents; labels learned")
    for m in shipped:
        what = f"{len(m['members'])} x {'+'.join(sorted(set(m['members'])))}, TTA {m['tta']}" + "".join(
            f", {k} prior {v:+g}" for k, v in m.get("class_prior", {}).items())
        fps = f"{m['faces_per_second']:.0f}" if m["faces_per_second"] else "-"
        gmac = f"{m['gmac_per_face']:.2f}" if m["gmac_per_face"] is not None else "-"
        print(f"  {m['name']:<9}{m['file']:<22}{m['size_mb']:>6.1f}MB{_pct(m['private_test']):>9}"
              f"{_pct(m.get('ferplus_private_test')):>8}{_pct(m['macro_f1_private']):>10}{gmac:>11}{fps:>9}  "
              f"{what}; {m.get('trained_labels', 'fer2013')}")
    speed = next((m["speed_note"] for m in shipped if m.get("speed_note")), None)
    if speed:
        print(f"  ({speed})")
    print()
    if archs is None:
        print("architectures (train --model NAME): torch is not installed; pip install 'ferkit[train]' to list them")
        return 0
    print("architectures (train --model NAME; needs torch)")
    for a in archs:
        print(f"  {a['name']:<12}{a['params']:>12,} params  {a['description']}")
    return 0
