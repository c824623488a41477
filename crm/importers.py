"""Import specs of the CRM for the shared engine (codex.imports): contacts and companies."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models.functions import Lower

from codex import imports as engine
from tenants.accounts.models import User

from . import access
from .models import Company, Contact, Lifecycle

CONTACT_BATCH = 2000


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
            for c in Company.objects.annotate(n=Lower("name")).filter(n__in=list(unknown)).order_by("pk"):
                self.by_name.setdefault(c.name.lower(), c)
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
        objs = []
        for r in rows:
            r = dict(r)
            if r.get("company"):
                r["company"] = by_name[r["company"].lower()]
            r.setdefault("owner", owner_default)
            r["tags"] = [t.lower() for t in r.get("tags", [])]
            objs.append(Contact(**r))
        Contact.objects.bulk_create(objs, batch_size=CONTACT_BATCH)
        return len(objs)

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
