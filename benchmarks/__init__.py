"""pytest-benchmark suites: ``pytest benchmarks --benchmark-only`` (not part of ``pytest``)."""
