"""Benchmark scripts (run them, they are not tests): retrieval quality and speed on public data."""
