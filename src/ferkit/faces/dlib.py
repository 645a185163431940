"""``dlib``: dlib's HOG + linear SVM frontal face detector (``dlib.get_frontal_face_detector()``).

Its weights are compiled into the dlib library, nothing is downloaded. Install with ``pip install 'ferkit[dlib]'``
(the ``dlib-bin`` wheel, 4 MB, no further dependencies). Score: the SVM margin (0 is dlib's own decision
boundary; higher = surer).
"""

from __future__ import annotations

import threading

import numpy as np

from .base import CropSpec, DetectorUnavailable, FaceDetector

# dlib upsamples small images to find small faces; never beyond this many pixels (at the default max_side of
# 640 it never binds: 1280 x 1280 at most; with max_side=None a 7000 x 7000 photo would become 14000 x 14000)
UPSAMPLE_MAX_PIXELS = 4096 * 4096


class DlibHogDetector(FaceDetector):
    name = "dlib"
    default_threshold = 0.0
    crop = CropSpec(margin=0.10, shift=0.05)  # HOG boxes are tight and cut the chin (RESULTS.md, end to end)

    def __init__(self, *args, **kw):
        try:
            import dlib
        except ImportError as e:
            raise DetectorUnavailable("detector 'dlib' needs the dlib package: pip install 'ferkit[dlib]' "
                                      "(installs the dlib-bin wheel)") from e
        super().__init__(*args, **kw)
        self._dlib = dlib
        self._local = threading.local()  # one dlib detector per thread: sharing one gives wrong boxes

    def _get(self):
        d = getattr(self._local, "det", None)
        if d is None:
            d = self._local.det = self._dlib.get_frontal_face_detector()
        return d

    def _raw(self, gray, min_face):
        # the HOG window is 80 px: each upsampling halves the smallest face found
        longer = max(gray.shape)
        if min_face >= 80:
            up = 0
        elif min_face >= 40 or longer > 400:
            up = 1
        else:
            up = 2
        while up and gray.size * 4 ** up > UPSAMPLE_MAX_PIXELS:  # each upsampling is 4x the pixels: bounded
            up -= 1
        adjust = min(self.threshold or 0.0, 0.0)  # let dlib return weak ones; _finish applies threshold
        rects, scores, _ = self._get().run(np.ascontiguousarray(gray), up, adjust)
        return [(float(r.left()), float(r.top()), float(r.width()), float(r.height()), float(s))
                for r, s in zip(rects, scores, strict=False)]
