"""Objects of every kind planted in a firm, each carrying a unique marker string.

``plant(firm, marker, owner)`` writes, in ``firm``'s schema, one object of every kind the URLs and
the API serve, owned by ``owner`` (for book-scoped kinds) and not shared with anyone, and returns
their ids by kind. Isolation tests then look for the marker in responses that must not show it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context

from codex.notifications.models import Notification
from codex.outbox.models import OutboxEvent
from crm.models import Activity, ActivityKind, Campaign, Company, Contact, Deal, ImportJob, PipelineStage, Subscriber
from portal.models import ClientAccess, Document, Post
from portfolios import services as portfolio_services
from portfolios.alerts.models import AlertEvent, AlertRule, RuleKind
from portfolios.market.models import AssetClass, FeedRun, FxRate, Instrument, Price
from portfolios.models import CustodianAccount, CustodianMapping, Portfolio, ReconciliationBreak
from tenants.accounts.models import Invitation, Role, User
from tenants.services import api_key_create
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import secret_new


def shared_market() -> dict[str, int]:
    """Market data is shared by every firm (public schema): one instrument, a price, an FX rate."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        instrument, _ = Instrument.objects.get_or_create(
            symbol="ISOX",
            exchange="XTST",
            defaults={"name": "Isolation Corp", "asset_class": AssetClass.EQUITY, "currency": "USD"},
        )
        Price.objects.get_or_create(instrument=instrument, date=dt.date(2025, 1, 2), defaults={"close": Decimal("10")})
        fx, _ = FxRate.objects.get_or_create(
            base="EUR", quote="USD", date=dt.date(2025, 1, 2), defaults={"rate": Decimal("1.1")}
        )
        run, _ = FeedRun.objects.get_or_create(provider="isolation", kind="fx", defaults={"status": "ok"})
    return {"instrument": instrument.pk, "fx": fx.pk, "feed_run": run.pk}


def plant(firm, marker: str, owner: User, market: dict[str, int]) -> dict[str, int]:
    """Every kind of object in ``firm``; ids by kind.

    Objects of an advisor's book (clients, companies, deals, activities, portfolios, transactions,
    imports) are ``owner``'s, not shared, and carry ``marker``; the firm's own objects (mailing
    list, campaigns, alert rules, invitations, API keys, invoices) carry ``marker + "FIRMWIDE"``.
    """
    firmwide = f"{marker}FIRMWIDE"
    ids: dict[str, int] = dict(market)
    with schema_context(firm.schema_name):
        company = Company.objects.create(name=f"{marker} Company", owner=owner)
        contact = Contact.objects.create(
            first_name=marker, last_name="Client", email=f"{marker.lower()}@client.test", owner=owner, company=company
        )
        stage = PipelineStage.objects.order_by("position").first()
        if stage is None:
            from crm.services import pipeline_stages_ensure

            pipeline_stages_ensure()
            stage = PipelineStage.objects.order_by("position").first()
        deal = Deal.objects.create(
            title=f"{marker} Deal", contact=contact, stage=stage, owner=owner, amount=Decimal("100"), currency="USD"
        )
        activity = Activity.objects.create(
            kind=ActivityKind.NOTE, subject=f"{marker} note", contact=contact, owner=owner
        )
        task = Activity.objects.create(
            kind=ActivityKind.TASK, subject=f"{marker} task", contact=contact, owner=owner, due_date=dt.date(2030, 1, 1)
        )
        subscriber = Subscriber.objects.create(email=f"{firmwide.lower()}@reader.test", status="confirmed")
        campaign = Campaign.objects.create(subject=f"{firmwide} campaign", body=f"{firmwide} body", created_by=owner)
        job = ImportJob.objects.create(
            kind="contacts",
            filename=f"{marker}.csv",
            headers=["First name", "Last name", "Email"],
            rows=[[marker, "Row", f"{marker.lower()}@row.test"]],
            mapping={"first_name": "First name", "last_name": "Last name", "email": "Email"},
            created_by=owner,
        )
        portfolio = Portfolio.objects.create(
            name=f"{marker} Portfolio", client=contact, advisor=owner, base_currency="USD"
        )
        txn = portfolio_services.transaction_record(
            portfolio=portfolio, kind="deposit", trade_date=dt.date(2025, 1, 2), amount="1000", note=marker
        )
        # the firm's own instrument (public table, keyed by the firm's schema): only this firm sees it
        ids["firm_instrument"] = Instrument.all_objects.create(
            symbol="OWNFUND",
            name=f"{firmwide} fund",
            asset_class=AssetClass.FUND,
            currency="USD",
            owner=firm.schema_name,
        ).pk
        rule = AlertRule.objects.create(
            kind=RuleKind.PRICE_ABOVE,
            instrument_id=market["instrument"],
            threshold=Decimal("5"),
            note=f"{firmwide} rule",
            created_by=owner,
        )
        event = AlertEvent.objects.create(
            rule=rule, fired_at=timezone.now(), observed_on=dt.date(2025, 1, 2), value=Decimal("10"), message=firmwide
        )
        invitation = Invitation.objects.create(email=f"{firmwide.lower()}@invite.test", role=Role.VIEWER)
        endpoint = WebhookEndpoint.objects.create(
            url=f"https://93.184.215.14/{firmwide}",
            description=f"{firmwide} hook",
            event_types=["contact.created"],
            secret=secret_new(),
        )
        hook_event = OutboxEvent.objects.create(
            type="contact.created", data={"marker": firmwide}, relayed_at=timezone.now()
        )
        delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=hook_event, status="failed")
        notification = Notification.objects.create(
            recipient=owner, kind="import", title=f"{marker} import finished", url="/crm/contacts/"
        )
        fees = _fees(portfolio, contact, marker, firmwide)
        # the client portal: a client user of the planted contact, a shared document, a post
        client_user = User.objects.filter(email=f"{marker.lower()}.client@client.test").first()
        if client_user is None:
            client_user = User.objects.create_user(
                f"{marker.lower()}.client@client.test", "correct-horse-battery-9", role=Role.CLIENT
            )
        ClientAccess.objects.update_or_create(user=client_user, defaults={"contact": contact})
        document = Document.objects.create(
            contact=contact,
            title=f"{marker} statement",
            kind="statement",
            visibility="shared",
            file=f"{firm.schema_name}/{contact.pk}/planted.pdf",
            filename="planted.pdf",
            content_type="application/pdf",
            size=1,
            sha256="0" * 64,
        )
        Post.objects.create(
            title=f"{firmwide} post", body_markdown="x", body_html=f"<p>{firmwide}</p>", published_at=timezone.now()
        )
        account = CustodianAccount.objects.create(custodian="isolation", account=f"{firmwide}-ACC", portfolio=portfolio)
        mapping = CustodianMapping.objects.create(
            custodian=firmwide.lower(), kind="positions", columns={"account": f"{firmwide} account"}
        )
        brk = ReconciliationBreak.objects.create(
            portfolio=portfolio, as_of=dt.date(2025, 1, 2), instrument_id=market["instrument"], currency="USD",
            ledger_quantity=0, custodian_quantity=1, difference=1, note=f"{marker} break",
        )  # fmt: skip
    key, _raw = api_key_create(tenant=firm, name=f"{firmwide} key", created_by="isolation")
    invoice = _invoice(firm, firmwide)
    ids.update(
        company=company.pk,
        contact=contact.pk,
        deal=deal.pk,
        activity=activity.pk,
        task=task.pk,
        stage=stage.pk,
        subscriber=subscriber.pk,
        campaign=campaign.pk,
        import_job=job.pk,
        portfolio=portfolio.pk,
        transaction=txn.pk,
        alert_rule=rule.pk,
        alert_event=event.pk,
        invitation=invitation.pk,
        member=owner.pk,
        api_key=key.pk,
        invoice=invoice.pk if invoice else 0,
        webhook_endpoint=endpoint.pk,
        webhook_delivery=delivery.pk,
        event_type="contact.created",
        notification=notification.pk,
        **fees,
        client_user=client_user.pk,
        document=document.pk,
        custodian_account=account.pk,
        custodian_mapping=mapping.pk,
        reconciliation_break=brk.pk,
    )
    return ids


def _fees(portfolio, contact, marker: str, firmwide: str) -> dict[str, int]:
    """The fee business: firm-wide schedule, product and run; the client's group, subscription,
    invoice and statement are in the book."""
    from django.core.files.base import ContentFile

    from fees import services as fee_services
    from fees.models import FeeInvoice, FeeRunJob, FeeStatement

    schedule = fee_services.fee_schedule_create(
        name=f"{firmwide} schedule",
        effective_from=dt.date(2020, 1, 1),
        method="blended",
        tiers=[{"upto": None, "bps": "100"}],
    )
    product = fee_services.product_create(name=f"{firmwide} product", fee_schedule=schedule)
    group = fee_services.billing_group_create(name=f"{marker} household", client=contact, portfolios=[portfolio])
    sub = fee_services.subscription_create(group=group, product=product, starts_on=dt.date(2025, 1, 2))
    run = fee_services.fee_run_preview(
        period_start=dt.date(2025, 4, 1), period_end=dt.date(2025, 6, 30), frequency="quarterly"
    )
    invoice = FeeInvoice.objects.create(
        number=f"{marker}-1",
        group=group,
        client=contact,
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2025, 3, 31),
        issued_on=dt.date(2025, 4, 1),
        due_on=dt.date(2025, 5, 1),
        currency="USD",
        total=Decimal("10.00"),
        collection="invoice",
    )
    statement = FeeStatement(
        invoice=invoice, client=contact, period_start=invoice.period_start, period_end=invoice.period_end
    )
    statement.file.save(f"{marker}.pdf", ContentFile(f"%PDF-1.4 {marker}".encode()), save=True)
    job = FeeRunJob.objects.create(
        kind="preview",
        status="done",
        period_start=run.period_start,
        period_end=run.period_end,
        frequency=run.frequency,
        run=run,
        message=f"{marker} preview computed",
    )
    return {
        "fee_schedule": schedule.pk,
        "product": product.pk,
        "billing_group": group.pk,
        "client_subscription": sub.pk,
        "fee_run": run.pk,
        "fee_run_job": job.pk,
        "fee_invoice": invoice.pk,
        "fee_statement": statement.pk,
    }


def _invoice(firm, marker: str):
    from billing.models import Invoice
    from billing.selectors import subscription_of

    sub = subscription_of(firm)
    if sub is None:
        return None
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        start = timezone.now() - dt.timedelta(days=400)
        return Invoice.objects.create(
            tenant=firm,
            subscription=sub,
            plan=sub.plan,
            currency="USD",
            period_start=start,
            period_end=start + dt.timedelta(days=30),
            interval="month",
            bill_to={"name": f"{marker} Billing"},
            status="open",
            number=f"{marker[:6]}-{firm.pk}-{start:%Y%m%d%H%M%S%f}"[:32],
        )
