"""``manage.py valuations_rebuild [--firm SLUG] [--portfolio ID]``: recompute stored valuations from
inception, in this process (after deploying the store, or to repair what ``valuations_verify``
reported). Each portfolio is replaced atomically; one that cannot be valued is reported and
keeps its previous rows. Exit status 1 when any failed."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from portfolios.models import Portfolio, ValuationStatus
from portfolios.valuation_services import firm_valuations_rebuild, valuations_rebuild
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Recompute stored valuations from inception (exit 1 if any portfolio cannot be valued)."

    def add_arguments(self, parser):
        parser.add_argument("--firm", help="Only this firm (its slug).")
        parser.add_argument("--portfolio", type=int, help="Only this portfolio (with --firm).")

    def handle(self, *args, firm=None, portfolio=None, **options):
        if portfolio is not None and not firm:
            raise CommandError("--portfolio needs --firm.")
        with schema_context(get_public_schema_name()):
            firms = Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("slug")
            firms = list(firms.filter(slug=firm) if firm else firms)
        if firm and not firms:
            raise CommandError(f"No firm with slug {firm!r}.")
        done = failed = 0
        for tenant in firms:
            with tenant_context(tenant):
                portfolios = Portfolio.objects.order_by("pk")
                if portfolio is not None:
                    portfolios = portfolios.filter(pk=portfolio)
                for p in portfolios:
                    state = valuations_rebuild(portfolio=p, since=date.min)
                    done += 1
                    if state.status == ValuationStatus.FAILED:
                        failed += 1
                        self.stdout.write(f"{tenant.slug} portfolio {p.pk} {p.name}: failed: {state.error}")
                if portfolio is None:  # the firm's totals, summed again from the stored days
                    firm_valuations_rebuild()
        summary = f"{done} portfolio(s) revalued, {failed} failed."
        if failed:
            raise CommandError(summary)
        self.stdout.write(summary)
