"""Benchmarks of StreamGuard's bounded read against the full scan it replaces, and the CI gate on their ratio.

``python -m bench.run`` measures and appends to ``bench/history/``; ``python -m bench.gate`` is the CI check.
See bench/README.md.
"""
