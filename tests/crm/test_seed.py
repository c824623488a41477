"""seed_crm: demo data in both firms, idempotent."""

from __future__ import annotations

from django.core.management import call_command
from django_tenants.utils import schema_context

from crm.models import Activity, Contact, Deal, Subscriber


def test_seed_crm_is_idempotent_and_fills_both_firms(firm, other_firm):
    call_command("seed_crm", verbosity=0)
    with schema_context(firm.schema_name):
        counts = (Contact.objects.count(), Deal.objects.count(), Activity.objects.count(), Subscriber.objects.count())
        assert counts[0] >= 12 and counts[1] == 8 and counts[3] == 8
        assert set(Deal.objects.values_list("status", flat=True)) == {"open", "won", "lost"}
        assert Activity.objects.filter(kind="task", completed_at__isnull=True).exists()
    call_command("seed_crm", verbosity=0)
    with schema_context(firm.schema_name):
        again = (Contact.objects.count(), Deal.objects.count(), Activity.objects.count(), Subscriber.objects.count())
    assert again == counts
    with schema_context(other_firm.schema_name):
        assert Deal.objects.count() == 8
