"""The streaming benchmark: ``python -m bench.streaming`` (see :mod:`bench.streaming`)."""
