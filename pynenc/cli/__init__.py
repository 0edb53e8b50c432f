"""The ``pynenc`` command line: runners, config, invocation status and a self-check demo.

Entry point: :func:`pynenc.cli.main.main` (installed as the ``pynenc`` script and run by
``python -m pynenc``).
"""
