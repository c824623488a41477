"""What the CRM's API views share: the member field, the merge body, the base viewset."""

from __future__ import annotations

from rest_framework import serializers, viewsets
from rest_framework.permissions import IsAuthenticated

from codex.api.idempotency import IdempotentPostMixin
from codex.api.permissions import CanWrite
from tenants.accounts.models import User


class MemberField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return User.objects.filter(is_active=True)


class MergeSerializer(serializers.Serializer):
    loser = serializers.IntegerField(help_text="The id of the record merged into this one (and deleted).")


def _tenant(request):
    return request.tenant


class CrmViewSet(IdempotentPostMixin, viewsets.ModelViewSet):
    permission_classes = [IsAuthenticated, CanWrite]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _fields(self, serializer, *, drop=("shared_with",)):
        data = dict(serializer.validated_data)
        extra = {k: data.pop(k) for k in drop if k in data}
        return data, extra
