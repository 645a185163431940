"""The seven emotion labels, their aliases and display colours.

The order is alphabetical and is the same everywhere in ferkit: model outputs, checkpoints,
ONNX metadata, CSV columns and JSON keys.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_CLASSES = len(EMOTIONS)
INDEX = {name: i for i, name in enumerate(EMOTIONS)}

# Order of the original FER2013 CSV's `emotion` column (0..6).
FER2013_CSV_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "disgusting": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "smile": "happy",
    "neutral": "neutral",
    "neutrality": "neutral",
    "calm": "neutral",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
}

# Colours as (B, G, R) for OpenCV drawing; `hex_color` gives the same for matplotlib/HTML.
COLORS_BGR: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (0, 200, 255),
    "neutral": (180, 180, 180),
    "sad": (200, 120, 30),
    "surprise": (0, 140, 255),
}


def canonical(name: str) -> str | None:
    """Map a folder or label name (any case, aliases allowed) to a canonical emotion, or None."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in ALIASES:
        return ALIASES[key]
    # tolerate numeric prefixes like "3_happy" or "03-happy"
    head, _, tail = key.partition("_")
    if head.isdigit() and tail in ALIASES:
        return ALIASES[tail]
    return None


def label_index(name: str) -> int:
    """Index of an emotion name; raises ValueError naming the valid labels."""
    c = canonical(name)
    if c is None:
        raise ValueError(f"unknown emotion {name!r}; valid names: {', '.join(EMOTIONS)} (and aliases)")
    return INDEX[c]


def hex_color(name: str) -> str:
    b, g, r = COLORS_BGR[name]
    return f"#{r:02x}{g:02x}{b:02x}"
