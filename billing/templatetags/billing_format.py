"""Template filters for billing pages: ``{{ amount|money:currency }}``, ``{{ limit|thousands }}``."""

from __future__ import annotations

from django import template

from billing.formatting import display_count, display_money

register = template.Library()
register.filter("money", display_money)
register.filter("thousands", display_count)

money = display_money
thousands = display_count
