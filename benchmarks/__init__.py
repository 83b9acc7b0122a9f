"""Benchmarks: `make bench` and the retrieval-quality measurement."""
