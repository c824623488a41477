"""``GET /api/v1/<resource>/{id}/history/``: the change history of one contact, portfolio or
transaction (codex.history), for whoever may read the record."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers

from codex.api.idempotency import IdempotentPostMixin
from codex.history import HistoryEntry, object_history
from crm import access as crm_access
from portfolios.access import portfolio_for_user
from portfolios.models import Transaction


def _text(value) -> str | None:
    return None if value is None else str(value)


class ChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    before = serializers.CharField(allow_null=True)
    after = serializers.CharField(allow_null=True)


class HistoryEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=["insert", "update", "delete"])
    who = serializers.CharField()
    user = serializers.IntegerField(source="user_id", allow_null=True)
    api_key = serializers.CharField(allow_null=True)
    request_id = serializers.CharField(allow_null=True)
    changes = serializers.SerializerMethodField()

    @extend_schema_field(ChangeSerializer(many=True))
    def get_changes(self, entry: HistoryEntry) -> list[dict]:
        return [
            {"field": name, "before": _text(before), "after": _text(after)}
            for name, (before, after) in entry.changes.items()
        ]


class _HistoryView(IdempotentPostMixin, generics.ListAPIView):
    serializer_class = HistoryEntrySerializer
    filter_backends: list = []

    def record(self):
        raise NotImplementedError

    def get_queryset(self):
        return object_history(obj=self.record())


@extend_schema(summary="Change history of a contact (oldest first)")
class ContactHistoryView(_HistoryView):
    def record(self):
        return crm_access.contact_for_user(self.request.user, self.kwargs["pk"])


@extend_schema(summary="Change history of a portfolio (oldest first)")
class PortfolioHistoryView(_HistoryView):
    def record(self):
        return portfolio_for_user(self.request.user, self.kwargs["pk"])


@extend_schema(summary="Change history of a transaction (oldest first)")
class TransactionHistoryView(_HistoryView):
    def record(self):
        portfolio = portfolio_for_user(self.request.user, self.kwargs["portfolio_pk"])
        return generics.get_object_or_404(Transaction.objects.filter(portfolio=portfolio), pk=self.kwargs["pk"])
