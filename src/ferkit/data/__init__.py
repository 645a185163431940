"""Datasets: readers (folders, fer2013.csv, .npz) with an on-disk decode cache, the audit, soft labels, augmentation.
May import numpy, Pillow and ferkit.emotions; only ``ferkit.data.augment`` imports torch. Never a higher room."""

from .readers import DatasetError, Split, decode_file, has_split, load_split, report_split, to_gray48

__all__ = ["DatasetError", "Split", "decode_file", "has_split", "load_split", "report_split", "to_gray48"]
