"""The measurement programs behind bench/RESULTS.md, and the harness they share (harness.py).

Run from the repository root as modules, e.g. `.venv/bin/python -m bench.scale --quick`; the
`make bench`, `bench-quick` and `chaos` targets do. Each program writes its own section of
RESULTS.md (economy.py: the head and sections 1-4 and 6; client_cost.py (section 5), ha.py,
scale.py, chaos.py: their marked sections); profile_memory.py only prints.
"""
