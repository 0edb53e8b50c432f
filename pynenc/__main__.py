"""``python -m pynenc ...`` runs the command line (same as the ``pynenc`` script)."""

from pynenc.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
