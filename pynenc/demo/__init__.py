"""A bundled example app, used by ``pynenc demo`` to check an installation end to end."""
