"""``python -m ferkit`` runs the command line; it is also the module torchrun starts:
``torchrun --nproc_per_node N -m ferkit train ...``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
