"""Benchmarks (run by hand with ``make bench``, never in CI). See docs/benchmarks.md."""
