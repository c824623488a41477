"""Factories for CRM rows. They write in whichever firm schema the connection is in."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory

from crm.models import Activity, ActivityKind, Company, Contact, Deal, PipelineStage, Subscriber


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n}")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    first_name = factory.Sequence(lambda n: f"First{n}")
    last_name = factory.Sequence(lambda n: f"Last{n}")
    email = factory.Sequence(lambda n: f"person{n}@example.com")


def stage(name: str) -> PipelineStage:
    from crm.services import pipeline_stages_ensure

    pipeline_stages_ensure()
    return PipelineStage.objects.get(name=name)


class DealFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deal

    title = factory.Sequence(lambda n: f"Deal {n}")
    stage = factory.LazyFunction(lambda: stage("Lead"))
    amount = Decimal("1000.00")
    currency = "USD"
    probability = 10


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    kind = ActivityKind.NOTE
    subject = factory.Sequence(lambda n: f"Activity {n}")


class TaskFactory(ActivityFactory):
    kind = ActivityKind.TASK
    due_date = factory.LazyFunction(dt.date.today)


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    email = factory.Sequence(lambda n: f"reader{n}@example.com")
    status = "confirmed"
