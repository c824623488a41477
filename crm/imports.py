"""Import specs of the CRM for the shared engine (codex.imports): contacts and companies."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models.functions import Lower
from django.utils import timezone

from codex import imports as engine
from codex.db import current_schema
from tenants.accounts.models import User

from . import access
from .models import Company, Contact, Lifecycle

# Contacts are created with COPY: measured on 50,000 rows, bulk_create spent 40 s building and
# binding the INSERT statements in Python; COPY writes the same rows in about 2 s (docs/benchmarks.md).
COPY_COLUMNS = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "other_emails",
    "other_phones",
    "company_id",
    "job_title",
    "lifecycle",
    "owner_id",
    "tags",
    "source",
    "notes",
    "created_at",
    "updated_at",
]
COPY_TYPES = [
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "varchar[]",
    "varchar[]",
    "int8",
    "varchar",
    "varchar",
    "int8",
    "varchar[]",
    "varchar",
    "text",
    "timestamptz",
    "timestamptz",
]


def copy_rows(model, columns: list[str], types: list[str], records: list[tuple]) -> int:
    """Insert rows with PostgreSQL COPY into ``model``'s table of the current firm schema.
    Constraints (unique e-mail, foreign keys) are checked by the database as for an INSERT."""
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        copy.set_types(types)
        for record in records:
            copy.write_row(record)
    return len(records)


# The GIN indexes search reads, by import kind: those of the tables each import writes (a contacts
# import creates companies too).
SEARCH_INDEXES = {
    "contacts": (
        "crm_contact_document",
        "crm_contact_name_trgm",
        "crm_contact_text_trgm",
        "crm_company_document",
        "crm_company_name_trgm",
    ),
    "companies": ("crm_company_document", "crm_company_name_trgm"),
}


def search_indexes_merge(kind: str) -> int:
    """Merge the pending lists of the GIN indexes a ``kind`` import wrote into their main trees
    (``gin_clean_pending_list``, built into PostgreSQL), in the current firm schema. Returns the
    number of pending pages merged.

    A GIN index with ``fastupdate`` (the default) queues new entries in a pending list, merged when
    it outgrows ``gin_pending_list_limit`` (4 MB) or by (auto)vacuum; every search reads the list
    linearly. After a COPY of 50,000 contacts up to 4 MB per index is left, and searches took 94 ms
    (p50) instead of 10 ms until autovacuum came by (decision 0202). Runs inside the import's
    transaction: the entries point at its rows whether or not they are committed yet, and the job
    is reported done only when search is fast again. Needs the role that owns the firm's tables
    (as for VACUUM), which is the application's role in django-tenants."""
    schema = connection.ops.quote_name(current_schema())
    names = [f"{schema}.{connection.ops.quote_name(index)}" for index in SEARCH_INDEXES.get(kind, ())]
    if not names:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(gin_clean_pending_list(i.name::regclass)), 0)::bigint"
            " FROM unnest(%s::text[]) AS i(name)",
            [names],
        )
        return cursor.fetchone()[0]


def _owner_parser(actor):
    members = {u.email.lower(): u for u in User.objects.filter(is_active=True)}

    def parse(value: str):
        user = members.get(value.strip().lower())
        if user is None:
            raise ValidationError(f"No active member with e-mail {value}.")
        if not access.can_assign_owner(actor) and user.pk != getattr(actor, "pk", None):
            raise ValidationError("Only owners and admins import records for someone else.")
        return user

    return parse


class _Companies:
    """Company names -> companies, created on demand (one query to load, one insert per batch)."""

    def __init__(self, actor):
        self.actor = actor
        self.by_name: dict[str, Company] = {}

    def resolve(self, names: set[str]) -> dict[str, Company]:
        unknown = {n.lower(): n for n in names if n.lower() not in self.by_name}
        if unknown:
            matches = Company.objects.annotate(n=Lower("name")).filter(n__in=list(unknown)).order_by("pk")
            for match in matches:
                self.by_name.setdefault(match.name.lower(), match)
            missing = [n for key, n in unknown.items() if key not in self.by_name]
            owner = self.actor if isinstance(self.actor, User) else None
            for c in Company.objects.bulk_create(Company(name=n, owner=owner) for n in missing):
                self.by_name[c.name.lower()] = c
        return self.by_name


def contact_spec(*, actor) -> engine.ImportSpec:
    owner_default = actor if isinstance(actor, User) else None
    companies = _Companies(actor)

    def find_existing(keys):
        return {c.email.lower(): c for c in Contact.objects.annotate(e=Lower("email")).filter(e__in=list(keys))}

    def _company(values):
        name = values.pop("company", None)
        if name:
            values["company"] = companies.resolve({name})[name.lower()]

    def create(rows: list[dict]) -> int:
        names = {r["company"] for r in rows if r.get("company")}
        by_name = companies.resolve(names) if names else {}
        now = timezone.now()
        owner_id = owner_default.pk if owner_default else None
        records: list[tuple[object, ...]] = []
        for r in rows:
            company = by_name[r["company"].lower()].pk if r.get("company") else None
            owner = r.get("owner")
            records.append(
                (
                    r.get("first_name", ""),
                    r.get("last_name", ""),
                    r.get("email", ""),
                    r.get("phone", ""),
                    [],
                    [],
                    company,
                    r.get("job_title", ""),
                    r.get("lifecycle", Lifecycle.LEAD),
                    owner.pk if owner is not None else owner_id,
                    [t.lower() for t in r.get("tags", [])],
                    r.get("source", ""),
                    r.get("notes", ""),
                    now,
                    now,
                )
            )
        return copy_rows(Contact, COPY_COLUMNS, COPY_TYPES, records)

    def update(contact: Contact, values: dict) -> None:
        values = dict(values)
        _company(values)
        values.pop("email", None)
        for name, value in values.items():
            if name == "tags":
                value = [t.lower() for t in value]
            setattr(contact, name, value)
        contact.save()

    def merge(contact: Contact, values: dict) -> None:
        values = dict(values)
        _company(values)
        values.pop("email", None)
        for name, value in values.items():
            if name == "tags":
                contact.tags = list(dict.fromkeys([*contact.tags, *(t.lower() for t in value)]))
            elif name == "notes" and contact.notes and value not in contact.notes:
                contact.notes = f"{contact.notes}\n\n{value}"
            elif not getattr(contact, name if name != "company" else "company_id"):
                setattr(contact, name, value)
        contact.save()

    return engine.ImportSpec(
        kind="contacts",
        key_field="email",
        fields=[
            engine.ImportField(
                "first_name",
                "First name",
                required=True,
                aliases=("firstname", "given name", "forename"),
                parse=engine.parse_max_length(100),
            ),
            engine.ImportField(
                "last_name",
                "Last name",
                aliases=("lastname", "surname", "family name"),
                parse=engine.parse_max_length(100),
            ),
            engine.ImportField(
                "email", "E-mail", aliases=("email address", "mail", "e-mail address"), parse=engine.parse_email
            ),
            engine.ImportField(
                "phone", "Phone", aliases=("telephone", "mobile", "phone number"), parse=engine.parse_max_length(40)
            ),
            engine.ImportField(
                "company",
                "Company",
                aliases=("organisation", "organization", "employer"),
                parse=engine.parse_max_length(200),
            ),
            engine.ImportField(
                "job_title", "Job title", aliases=("title", "position", "role"), parse=engine.parse_max_length(100)
            ),
            engine.ImportField(
                "lifecycle",
                "Lifecycle",
                aliases=("stage", "status", "type"),
                parse=engine.parse_choice(Lifecycle.choices),
            ),
            engine.ImportField("tags", "Tags", aliases=("labels",), parse=engine.parse_list, is_list=True),
            engine.ImportField("source", "Source", aliases=("lead source",), parse=engine.parse_max_length(100)),
            engine.ImportField("notes", "Notes", aliases=("note", "comments", "description")),
            engine.ImportField("owner", "Owner", aliases=("owner email", "advisor"), parse=_owner_parser(actor)),
        ],
        find_existing=find_existing,
        create=create,
        update=update,
        merge=merge,
    )


def company_spec(*, actor) -> engine.ImportSpec:
    owner_default = actor if isinstance(actor, User) else None

    def find_existing(keys):
        out = {}
        for c in Company.objects.annotate(n=Lower("name")).filter(n__in=list(keys)).order_by("pk"):
            out.setdefault(c.name.lower(), c)
        return out

    def create(rows):
        objs = [Company(**{"owner": owner_default, **r}) for r in rows]
        Company.objects.bulk_create(objs, batch_size=2000)
        return len(objs)

    def update(company, values):
        for name, value in values.items():
            if name != "name":
                setattr(company, name, value)
        company.save()

    def merge(company, values):
        for name, value in values.items():
            if name == "tags":
                company.tags = list(dict.fromkeys([*company.tags, *value]))
            elif not getattr(company, name):
                setattr(company, name, value)
        company.save()

    return engine.ImportSpec(
        kind="companies",
        key_field="name",
        fields=[
            engine.ImportField(
                "name", "Name", required=True, aliases=("company", "company name"), parse=engine.parse_max_length(200)
            ),
            engine.ImportField("domain", "Domain", parse=engine.parse_max_length(200)),
            engine.ImportField("website", "Website", aliases=("url",), parse=engine.parse_max_length(200)),
            engine.ImportField("phone", "Phone", parse=engine.parse_max_length(40)),
            engine.ImportField("industry", "Industry", aliases=("sector",), parse=engine.parse_max_length(100)),
            engine.ImportField("tags", "Tags", parse=engine.parse_list, is_list=True),
            engine.ImportField("notes", "Notes"),
            engine.ImportField("owner", "Owner", aliases=("owner email",), parse=_owner_parser(actor)),
        ],
        find_existing=find_existing,
        create=create,
        update=update,
        merge=merge,
    )


SPECS = {"contacts": contact_spec, "companies": company_spec}
