"""Live updates: events pushed to open pages over Server-Sent Events (docs/live-updates.md).

- ``codex.live.publish`` (sync, web and worker processes): ``live_publish`` appends an event to a
  capped Redis stream per user (or per firm) and wakes subscribers with a Redis PUBLISH.
- ``codex.live.tokens``: the signed stream token a session-authenticated page hands its browser.
- ``codex.live.server``: the ASGI app served by uvicorn beside gunicorn; it verifies the token,
  subscribes to the two channels the token names, replays from ``Last-Event-ID`` and streams. It
  never touches the database (django-tenants' async ORM path runs in public).
"""
