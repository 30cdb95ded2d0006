"""``python -m tuner`` runs the CLI."""

from tuner.cli import main

main()
