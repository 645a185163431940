"""ferkit: facial emotion recognition — train, evaluate and run offline models (7 emotions).
Rooms follow the data: emotions, data, models, train and evaluate, export, the runtime, the doors (cli, serve).

>>> from ferkit import Recognizer
>>> Recognizer().detect("group.jpg")      # list[Face]: box, score, label, confidence, probs

Importing ferkit never imports torch: the runtime (faces, recognizer, video) runs on onnxruntime alone.
``ferkit.Recognizer`` is loaded lazily on first use. The package ships type hints (``py.typed``).
"""

from .emotions import EMOTIONS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "Recognizer", "__version__"]


def __getattr__(name: str):
    if name == "Recognizer":
        from .recognizer import Recognizer

        return Recognizer
    raise AttributeError(f"module 'ferkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
