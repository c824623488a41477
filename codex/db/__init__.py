"""Codex's database backend: django-tenants' PostgreSQL backend, every connection timing its queries."""
