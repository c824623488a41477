"""Platform status (kernel): checks of every service, an uptime history, the operators' page.

``checks.run_all()`` checks PostgreSQL, Redis, the Celery broker, the workers, queue depth, beat,
migrations and the upload storage's disk; beat's ``codex.status.record_checks`` runs them every minute on
a worker and stores one ``ServiceCheck`` row per service (kept 90 days). The public ``/status/``
shows the latest states without details; operators see states, latency, details, last failure and
uptime in the console (Platform status). Decision: docs/decisions/0800-platform-status.md.
"""
