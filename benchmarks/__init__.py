"""Ticketline benchmarks: cost per call, a sale, hot keys, cold start and dollars per million tickets.

Each benchmark is a module run as `python -m benchmarks.<name>` (or `make bench-<name>`); it writes
docs/benchmarks/<name>.json and re-renders docs/BENCHMARKS.md from every JSON present.
"""
