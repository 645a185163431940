"""Old name of :mod:`ferkit.faces.centerface` (the CenterFace detector), kept so that old imports work."""

import sys

from .faces import centerface

sys.modules[__name__] = centerface
