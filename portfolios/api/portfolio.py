"""Portfolios: list, create, read, update, delete."""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import filters, serializers, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from codex.api.errors import Conflict
from codex.api.fields import CurrencyField
from codex.api.filters import StrictFilterBackend, StrictOrderingFilter
from codex.api.idempotency import IdempotentPostMixin
from codex.api.pagination import KnownCount
from codex.api.permissions import CanWrite
from crm.models import Contact
from portfolios.market.models import Instrument
from tenants.accounts.models import User

from .. import selectors, services
from ..access import portfolio_for_user, sees_every_portfolio, sees_whole_firm
from ..models import LotMethod, Portfolio


class PortfolioSerializer(serializers.ModelSerializer):
    client_name = serializers.SerializerMethodField()
    advisor_email = serializers.EmailField(source="advisor.email", read_only=True)
    benchmark_symbol = serializers.CharField(source="benchmark.symbol", read_only=True, allow_null=True)
    shared_with = serializers.SerializerMethodField()

    class Meta:
        model = Portfolio
        fields = [
            "id",
            "name",
            "client",
            "client_name",
            "advisor",
            "advisor_email",
            "base_currency",
            "benchmark",
            "benchmark_symbol",
            "lot_method",
            "shared_with",
            "archived",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_client_name(self, obj) -> str | None:
        return str(obj.client) if obj.client_id else None

    def get_shared_with(self, obj) -> list[int]:
        ids = getattr(obj, "shared_with_ids", None)
        if ids is not None:
            return list(ids)
        return sorted(u.pk for u in obj.shared_with.all())


class PortfolioInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    client = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all(), allow_null=True, required=False)
    advisor = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False)
    base_currency = CurrencyField(required=False, default="USD")
    benchmark = serializers.PrimaryKeyRelatedField(queryset=Instrument.objects.all(), allow_null=True, required=False)
    lot_method = serializers.ChoiceField(choices=LotMethod.choices, required=False, default=LotMethod.FIFO)
    shared_with = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), many=True, required=False
    )
    archived = serializers.BooleanField(required=False)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None and not sees_whole_firm(user):
            # an advisor can only name clients in their book; others look non-existent
            self.fields["client"].queryset = Contact.objects.filter(
                Q(owner_id=user.pk) | Q(shared_with=user.pk)
            ).distinct()


class PortfolioCreateSchemaSerializer(PortfolioInputSerializer):
    """The create body as documented: ``advisor`` is required of API keys, which act for the firm
    and have no book of their own (a signed-in user who leaves it out advises the portfolio)."""

    advisor = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True),
        help_text="The portfolio's advisor. Required with an API key; a signed-in user may leave it "
        "out to be the advisor.",
    )


class PortfolioFilter(django_filters.FilterSet):
    base_currency = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Portfolio
        fields = ["archived", "advisor", "client", "base_currency", "benchmark"]


class PortfolioSearchFilter(filters.SearchFilter):
    """DRF's ``search`` parameter and its schema; the match is ``selectors.portfolios_matching``
    (the name, or the client's name), answered by trigram indexes."""

    def filter_queryset(self, request, queryset, view):
        terms = self.get_search_terms(request)
        return selectors.portfolios_matching(queryset, terms) if terms else queryset


class PortfolioViewSet(IdempotentPostMixin, viewsets.ModelViewSet):
    """Portfolios in the caller's book (advisors) or the whole firm (owners, admins, viewers, keys):
    ``selectors.portfolio_list`` read through ``PortfolioSerializer``, list and detail alike."""

    serializer_class = PortfolioSerializer
    permission_classes = [IsAuthenticated, CanWrite]
    filterset_class = PortfolioFilter
    filter_backends = [StrictFilterBackend, PortfolioSearchFilter, StrictOrderingFilter]
    search_fields = ["name", "client__first_name", "client__last_name"]
    ordering_fields = ["name", "created_at", "id", "base_currency"]
    ordering = ["name", "id"]
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Portfolio.objects.none()
        return selectors.portfolio_list(user=self.request.user)

    def paginate_queryset(self, queryset):
        """The whole firm's list, narrowed by no filter and no search, is paged with the count the
        database keeps on write (``selectors.portfolio_firm_count``) rather than a ``COUNT(*)``
        over the table (docs/decisions/1320); any filter or search counts its own rows."""
        params = self.request.query_params
        narrowed = any(params.get(name) for name in (*PortfolioFilter.base_filters, PortfolioSearchFilter.search_param))
        if not narrowed and sees_every_portfolio(self.request.user):
            queryset = KnownCount(queryset, selectors.portfolio_firm_count())
        return super().paginate_queryset(queryset)

    def get_object(self):
        write = self.request.method not in ("GET", "HEAD", "OPTIONS")
        return portfolio_for_user(self.request.user, self.kwargs["pk"], write=write, queryset=self.get_queryset())

    @extend_schema(request=PortfolioCreateSchemaSerializer, responses={201: PortfolioSerializer})
    def create(self, request, *args, **kwargs):
        data = PortfolioInputSerializer(data=request.data, user=request.user)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        advisor = v.get("advisor") or (request.user if request.user.pk else None)
        if advisor is None:
            raise ValidationError({"advisor": "An API key acts for the firm: name the advisor."})
        portfolio = services.portfolio_create(
            tenant=request.tenant,
            actor=request.user,
            name=v["name"],
            advisor=advisor,
            client=v.get("client"),
            base_currency=v["base_currency"],
            benchmark=v.get("benchmark"),
            lot_method=v["lot_method"],
            shared_with=v.get("shared_with", ()),
        )
        return Response(PortfolioSerializer(self.get_queryset().get(pk=portfolio.pk)).data, status=201)

    @extend_schema(request=PortfolioInputSerializer, responses=PortfolioSerializer)
    def update(self, request, *args, **kwargs):
        portfolio = self.get_object()
        data = PortfolioInputSerializer(data=request.data, partial=kwargs.get("partial", False), user=request.user)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if not kwargs.get("partial"):
            changes.pop("archived", None)
        services.portfolio_update(portfolio=portfolio, actor=request.user, **changes)
        return Response(PortfolioSerializer(self.get_queryset().get(pk=portfolio.pk)).data)

    def destroy(self, request, *args, **kwargs):
        portfolio = self.get_object()
        try:
            services.portfolio_delete(portfolio=portfolio)
        except ValidationError as exc:
            raise Conflict(" ".join(exc.messages), code="portfolio_has_ledger") from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
