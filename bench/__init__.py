"""The measurement programs behind bench/RESULTS.md, and the harnesses they share (harness.py;
chaos_harness.py for the chaos suites chaos.py, chaos_models.py and chaos_tfy.py).

Run from the repository root as modules, e.g. `.venv/bin/python -m bench.scale --quick`; the
`make bench`, `bench-quick` and `chaos` targets do. Each program writes its own section of
RESULTS.md (economy.py: the head and sections 1-4 and 6; client_cost.py (section 5), ha.py,
scale.py, model_sync.py and the chaos suites: their marked sections); profile_memory.py only prints.
"""
