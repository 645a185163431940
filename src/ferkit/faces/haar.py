"""``haar``: OpenCV's Haar cascade ``haarcascade_frontalface_default.xml`` from ``cv2.data.haarcascades``.

opencv-python-headless 4.x is a core dependency, so this backend is always there; it is also the weakest
(misses many tilted, dark or expressive faces). Score: the cascade's level weight (about 0..10, higher = surer).
"""

from __future__ import annotations

import threading

import numpy as np

from .base import CropSpec, DetectorUnavailable, FaceDetector


class HaarDetector(FaceDetector):
    name = "haar"
    default_threshold = None
    crop = CropSpec(margin=0.20, shift=0.10)  # Haar boxes are small (brows to lips): end to end, RESULTS.md

    def __init__(self, *args, scale_factor: float = 1.1, min_neighbors: int = 5,
                 cascade: str = "haarcascade_frontalface_default.xml", **kw):
        import cv2

        super().__init__(*args, **kw)
        self._path = cv2.data.haarcascades + cascade
        self._local = threading.local()  # cascades are not safe to share between threads
        self._get()  # fail early if missing
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def _get(self):
        import cv2

        c = getattr(self._local, "cascade", None)
        if c is None:
            c = cv2.CascadeClassifier(self._path)
            if c.empty():
                raise DetectorUnavailable(f"cannot load the OpenCV Haar cascade {self._path} "
                                          "(needs opencv-python-headless 4.x: OpenCV 5 has no cascades)")
            self._local.cascade = c
        return c

    def _raw(self, gray, min_face):
        import cv2

        eq = cv2.equalizeHist(gray)
        m = max(24, int(min_face))
        if min(gray.shape) < m:
            return []
        rects, _levels, weights = self._get().detectMultiScale3(
            eq, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(m, m),
            outputRejectLevels=True)
        if len(rects) == 0:
            return []
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        return [(float(x), float(y), float(bw), float(bh), float(s))
                for (x, y, bw, bh), s in zip(rects, w, strict=False)]
