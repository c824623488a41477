"""Demo CRM data for acme and globex: companies, contacts, deals across the pipeline, activities,
tasks due today and overdue, newsletter subscribers and a draft campaign.

Idempotent and deterministic: every row is looked up by a natural key (e-mail, name, title,
subject) before it is created, so running it twice changes nothing. Dates are relative to today
so the demo always has tasks due today and overdue.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from crm import services
from crm.models import (
    Activity,
    ActivityKind,
    Campaign,
    Company,
    Contact,
    Deal,
    DealStageChange,
    Lifecycle,
    PipelineStage,
    StageKind,
    Subscriber,
    SubscriberStatus,
)
from tenants.accounts.models import Role, User
from tenants.models import Tenant

COMPANIES = [
    ("Lovelace Analytical Engines", "analytical.example", "Technology"),
    ("Hopper Naval Systems", "hopper-naval.example", "Defence"),
    ("Curie Radium Institute", "curie.example", "Research"),
    ("Babbage & Sons", "babbage.example", "Manufacturing"),
    ("Noether Algebra Foundation", "noether.example", "Non-profit"),
]
# first, last, lifecycle, company index or None, owner ("advisor"/"owner"), tags
CONTACTS = [
    ("Ada", "Lovelace", Lifecycle.CLIENT, 0, "advisor", ["vip"]),
    ("Grace", "Hopper", Lifecycle.CLIENT, 1, "advisor", ["vip", "bonds"]),
    ("Marie", "Curie", Lifecycle.CLIENT, 2, "advisor", ["europe"]),
    ("Charles", "Babbage", Lifecycle.PROSPECT, 3, "owner", ["entrepreneur"]),
    ("Emmy", "Noether", Lifecycle.PROSPECT, 4, "advisor", []),
    ("Alan", "Turing", Lifecycle.LEAD, None, "owner", ["referral"]),
    ("Katherine", "Johnson", Lifecycle.LEAD, None, "advisor", []),
    ("Rosalind", "Franklin", Lifecycle.PROSPECT, 2, "owner", []),
    ("Hedy", "Lamarr", Lifecycle.LEAD, None, "advisor", ["event"]),
    ("John", "von Neumann", Lifecycle.FORMER, None, "owner", []),
    ("Sophie", "Germain", Lifecycle.LEAD, None, "advisor", ["newsletter"]),
    ("Lise", "Meitner", Lifecycle.PROSPECT, None, "owner", []),
]
# title, contact index, stage name, amount, currency, expected close (days from today), reason
DEALS = [
    ("Lovelace: additional mandate", 0, "Proposal", "250000", "USD", 20, ""),
    ("Hopper: bond ladder", 1, "Negotiation", "400000", "USD", 10, ""),
    ("Curie: EUR equity sleeve", 2, "Qualified", "150000", "EUR", 45, ""),
    ("Babbage: family office set-up", 3, "Lead", "1200000", "USD", 90, ""),
    ("Noether: foundation reserves", 4, "Proposal", "600000", "EUR", 30, ""),
    ("Turing: first portfolio", 5, "Lead", "80000", "USD", 60, ""),
    ("Franklin: pension transfer", 7, "Won", "300000", "USD", -3, "Signed after the second meeting"),
    ("Lamarr: trading account", 8, "Lost", "50000", "USD", -5, "Chose a robo-advisor on fees"),
]
# subject, kind, contact index, days ago (negative = due in days for tasks), body
ACTIVITIES = [
    ("Annual review", ActivityKind.MEETING, 0, 12, "Reviewed allocation; wants more bonds next year."),
    ("Called about rate cuts", ActivityKind.CALL, 1, 3, "Discussed duration risk."),
    ("Sent the EUR factsheet", ActivityKind.EMAIL, 2, 5, ""),
    ("Met at the fintech evening", ActivityKind.NOTE, 8, 20, "Interested in a trading account."),
    ("Intro from Babbage", ActivityKind.NOTE, 5, 8, "Referred by Charles Babbage."),
]
TASKS = [
    ("Prepare Hopper bond proposal", 1, 0),  # due today
    ("Send KYC pack to Turing", 5, -2),  # overdue
    ("Follow up with Noether board", 4, 3),
    ("Call Curie about the EUR sleeve", 2, -1),
]


# The status a seeded deal gets from the kind of its stage.
DEAL_STATUS_OF_STAGE: dict[str, str] = {StageKind.OPEN: "open", StageKind.WON: "won", StageKind.LOST: "lost"}


class Command(BaseCommand):
    help = "Seed demo CRM data (companies, contacts, deals, activities, tasks, subscribers) in acme and globex."

    def handle(self, *args, **options):
        for slug in ("acme", "globex"):
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                self.stdout.write(f"seed_crm: firm {slug} does not exist; skipped.")
                continue
            with schema_context(tenant.schema_name), transaction.atomic():
                created = self.seed_firm(slug)
            self.stdout.write(f"seed_crm: {slug}: {created} row(s) created.")

    def seed_firm(self, slug: str) -> int:
        owner = User.objects.filter(role=Role.OWNER, is_active=True).order_by("pk").first()
        if owner is None:
            return 0
        advisor = User.objects.filter(email__iexact=f"advisor@{slug}.example").first() or owner
        people = {"owner": owner, "advisor": advisor}
        today = timezone.localdate()
        created = 0
        services.pipeline_stages_ensure()
        stages = {s.name: s for s in PipelineStage.objects.all()}

        companies = []
        for name, domain, industry in COMPANIES:
            company, new = Company.objects.get_or_create(
                name=name, defaults={"domain": domain, "industry": industry, "owner": owner}
            )
            companies.append(company)
            created += new

        contacts: list[Contact] = []
        for first, last, lifecycle, company_index, who, tags in CONTACTS:
            # The same address as seed_portfolios uses for its clients, so both seeds meet.
            email = f"{first}.{last.replace(' ', '')}@clients.{slug}.example".lower()
            contact, new = Contact.objects.get_or_create(
                email=email,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "lifecycle": lifecycle,
                    "owner": people[who],
                    "company": companies[company_index] if company_index is not None else None,
                    "tags": tags,
                    "source": "demo",
                    "phone": f"+1 555 01{len(contacts):02d}",
                },
            )
            if not new and contact.company_id is None and company_index is not None:
                contact.company = companies[company_index]
                contact.save(update_fields=["company"])
            contacts.append(contact)
            created += new

        for title, ci, stage_name, amount, currency, days, reason in DEALS:
            if Deal.objects.filter(title=title).exists():
                continue
            contact = contacts[ci]
            stage = stages[stage_name]
            deal = Deal.objects.create(
                title=title,
                contact=contact,
                company=contact.company,
                stage=stage,
                amount=Decimal(amount),
                currency=currency,
                probability=stage.probability,
                expected_close=today + dt.timedelta(days=days),
                owner=contact.owner,
                status=DEAL_STATUS_OF_STAGE[stage.kind],
                closed_at=None if stage.kind == StageKind.OPEN else timezone.now() - dt.timedelta(days=-days),
                close_reason=reason,
            )
            DealStageChange.objects.create(deal=deal, to_stage=stages["Lead"], changed_by=deal.owner)
            if stage.name != "Lead":
                DealStageChange.objects.create(
                    deal=deal, from_stage=stages["Lead"], to_stage=stage, changed_by=deal.owner, note=reason
                )
            created += 1

        for subject, kind, ci, days_ago, body in ACTIVITIES:
            if Activity.objects.filter(subject=subject, contact=contacts[ci]).exists():
                continue
            Activity.objects.create(
                kind=kind,
                subject=subject,
                body=body,
                contact=contacts[ci],
                company=contacts[ci].company,
                owner=contacts[ci].owner,
                occurred_at=timezone.now() - dt.timedelta(days=days_ago),
            )
            created += 1

        tasks_before = Activity.objects.filter(kind=ActivityKind.TASK).count()
        for subject, ci, due_in in TASKS:
            if Activity.objects.filter(subject=subject, kind=ActivityKind.TASK).exists():
                continue
            services.task_create(
                owner=contacts[ci].owner or advisor,
                title=subject,
                contact=contacts[ci],
                due_date=today + dt.timedelta(days=due_in),
                source="demo",
            )
        # task_create is idempotent per source: count what it really added.
        created += Activity.objects.filter(kind=ActivityKind.TASK).count() - tasks_before

        for i, contact in enumerate(contacts[:8]):
            status = [SubscriberStatus.CONFIRMED] * 5 + [SubscriberStatus.PENDING] * 2 + [SubscriberStatus.UNSUBSCRIBED]
            _sub, new = Subscriber.objects.get_or_create(
                email=contact.email,
                defaults={
                    "contact": contact,
                    "status": status[i],
                    "source": "demo",
                    "confirmed_at": timezone.now() if status[i] != SubscriberStatus.PENDING else None,
                    "unsubscribed_at": timezone.now() if status[i] == SubscriberStatus.UNSUBSCRIBED else None,
                },
            )
            created += new

        _campaign, new = Campaign.objects.get_or_create(
            subject="Quarterly letter: what rate cuts mean for your portfolio",
            defaults={
                "body": (
                    "Dear clients,\n\nCentral banks have started to cut rates. Here is what it means for the "
                    "bonds and equities in your portfolio, and what we are doing about it.\n\n"
                    "Read the full letter at https://example.com/letters/q3\n\nYour advisory team"
                ),
                "created_by": owner,
            },
        )
        return created + new
