"""Dataset readers (folders, fer2013.csv) with an on-disk decode cache; augmentation lives in
``ferkit.data.augment`` (needs torch) and the dataset audit in ``ferkit.data.audit``."""

from .readers import DatasetError, Split, decode_file, has_split, load_split, report_split, to_gray48

__all__ = ["DatasetError", "Split", "decode_file", "has_split", "load_split", "report_split", "to_gray48"]
