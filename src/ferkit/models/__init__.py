"""Networks: the registry (``create_model(name)``, ``list_models()``), seed and fernet architectures, TTA views.
May import torch and numpy only; never data, train or a higher room. Importing this package needs torch."""

from . import fernet, seed  # noqa: F401  (register the models)
from .registry import count_params, create_model, describe_model, list_models, register_model

__all__ = ["create_model", "list_models", "describe_model", "count_params", "register_model"]
