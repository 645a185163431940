"""Value semantics for frozen dataclasses that hold numpy arrays (``Face``, ``Prediction``).

A plain frozen dataclass compares field tuples, so ``f1 == f2`` raises "the truth value of an array is
ambiguous" and ``hash(f1)`` raises "unhashable type". With :class:`ArrayValue` two objects are equal when
they are of the same class and every field is equal, arrays compared element-wise and exactly (same shape,
same values, ``np.array_equal``); the hash is consistent with that equality (arrays hashed by shape, dtype
and bytes). The arrays are made read-only by the classes that use it, so the hash cannot go stale.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def _key(v):
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "f":
            v = v + 0.0  # -0.0 == 0.0 must hash alike
        return ("ndarray", v.shape, v.dtype.str, v.tobytes())
    if isinstance(v, (list, tuple)):
        return tuple(_key(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _key(x)) for k, x in v.items()))
    return v


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape \
            and bool(np.array_equal(a, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


class ArrayValue:
    """Mixin for ``@dataclass(frozen=True, eq=False)`` classes: value equality and hashing, arrays included."""

    __slots__ = ()

    def __eq__(self, other) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(_equal(getattr(self, f.name), getattr(other, f.name))
                   for f in dataclasses.fields(self) if f.compare)

    def __hash__(self) -> int:
        return hash((self.__class__.__name__,
                     *(_key(getattr(self, f.name)) for f in dataclasses.fields(self) if f.compare)))


def frozen_array(a, dtype=np.float32) -> np.ndarray:
    """A read-only copy-free view of ``a`` as ``dtype`` (copied only when the dtype differs)."""
    out = np.asarray(a, dtype=dtype)
    if out.flags.writeable:
        out = out.view()
        out.flags.writeable = False
    return out
