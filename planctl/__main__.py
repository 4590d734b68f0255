"""``python -m planctl``: the same as the ``planctl`` console script."""

from planctl.cli import main

main()
