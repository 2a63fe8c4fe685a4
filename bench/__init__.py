"""Benchmarks of StreamGuard's bounded read against the full scan it replaces, of the embedded engine against Spark
(cold, whole ``streamguard run`` processes), and the CI gate on their ratios.

``python -m bench.run`` measures both and appends to ``bench/history/``; ``python -m bench.engines`` runs the engine
series alone; ``python -m bench.gate`` is the CI check. See bench/README.md.
"""
