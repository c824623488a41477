"""Pieces of the HTTP benchmark harness driven by ``bench/run_all.py``.

- ``db``: the scratch database the benchmark server runs against;
- ``server``: gunicorn processes (production settings, 2 sync workers, ``gunicorn.conf.py``);
- ``load``: wrk for peak throughput, a constant-rate driver for latency at a fixed load;
- ``report``: machine facts and the Markdown sections of ``docs/benchmarks.md``;
- ``stack`` and ``drill``: the private stack the fault drills break, and the client load they put on it.
"""
