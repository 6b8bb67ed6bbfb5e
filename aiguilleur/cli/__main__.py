"""``python -m aiguilleur.cli``."""

from aiguilleur.cli import main

main()
