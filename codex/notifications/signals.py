"""Signals of the notification centre (a higher app reacts without the kernel importing it)."""

from django.dispatch import Signal

# Sent after a member marked notices read in the centre: ``user``, ``sources`` (the non-empty
# ``source`` of each notice marked). portfolios.alerts marks the matching alert notifications read,
# so the bell and the alerts page agree.
notifications_read = Signal()
