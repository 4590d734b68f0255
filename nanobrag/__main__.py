"""``python -m nanobrag``: the ``nanobrag`` command (also what ``torchrun -m nanobrag`` runs on every rank)."""

import sys

from .cli import main

sys.exit(main())
