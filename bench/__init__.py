"""Benchmarks and the soak run, each a module run from the repository root: `python -m bench.<name>`."""
