"""Benchmark suite of bioimageio-run: ``python benchmarks/run.py`` (see ``docs/benchmarks.md``)."""
