"""``python -m tuner`` runs the CLI."""

from tuner.cli import main

if __name__ == "__main__":  # not when a spawned child process imports this module again
    main()
