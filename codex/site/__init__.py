"""The site half of ``codex``: the URLconfs and the pages that compose several domains (dashboard,
onboarding, the client record). It may import every domain app and the kernel; nothing imports it
but Django (settings name its URLconfs). The layers: docs/architecture.md."""
