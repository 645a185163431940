"""ferkit: facial emotion recognition — train, evaluate and run offline models (7 emotions).

Importing ferkit never imports torch: the runtime (faces, recognizer) runs on onnxruntime alone.
"""

from .emotions import EMOTIONS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "__version__"]
