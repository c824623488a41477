"""Codex with the fixes of docs/benchmarks.md "Profile and fix" switched off, for a same-run A/B.

Served next to the normal server by ``bench/run_all.py --before`` (port 8704). Switches:

- ``CODEX_TENANT_LOCAL_CACHE = False``: host and API-key lookups go to Redis on every request
  (decision 0700 off; API keys are then cached in Redis, before they were a query every request);
- ``CODEX_METERING_FLAG_MEMO_SECONDS = 0``: metering reads its two flags from Redis per request;
- ``CODEX_SUMMARY_CACHE = False``: portfolio summaries replayed on every dashboard view.
"""

from codex.settings import *  # noqa: F403

CODEX_TENANT_LOCAL_CACHE = False
CODEX_METERING_FLAG_MEMO_SECONDS = 0
CODEX_SUMMARY_CACHE = False
