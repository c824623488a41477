"""CSV imports: upload, configure, preview, commit, cancel."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, OpenApiRequest, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from codex import imports as engine
from codex.api.idempotency import IdempotentPostMixin
from codex.api.parsers import BoundedJSONParser
from codex.api.permissions import CanWrite

from .. import access, services
from ..models import ImportJob
from .common import _tenant


class ImportConfigureSerializer(serializers.Serializer):
    mapping = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="Column of the file -> field to import it into (blank: skip the column). Leave out to keep it.",
    )
    duplicates = serializers.ChoiceField(choices=["skip", "update", "merge"], required=False)


class ImportJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportJob
        fields = [
            "id",
            "kind",
            "status",
            "filename",
            "encoding",
            "headers",
            "mapping",
            "duplicates",
            "report",
            "created_at",
            "committed_at",
        ]
        read_only_fields = fields


class ImportViewSet(IdempotentPostMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """CSV imports: upload (multipart ``file`` + ``kind``) -> mapping and preview -> commit."""

    serializer_class = ImportJobSerializer
    permission_classes = [IsAuthenticated, CanWrite]
    filterset_fields = ["kind", "status"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at", "-pk"]
    search_fields = ["filename"]

    def get_parsers(self):
        # The upload is multipart; every other body of this resource is JSON, as everywhere. DRF
        # picks the parsers before it sets ``action``: the route's POST action tells them apart.
        action = getattr(self, "action", None) or getattr(self, "action_map", {}).get("post")
        return [MultiPartParser()] if action == "create" else [BoundedJSONParser()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ImportJob.objects.none()
        return access.imports_for(self.request.user).defer("rows")

    def _preview_body(self, job, preview, limit: int = 200):
        return ImportJobSerializer(job).data | {
            "preview": {
                "counts": preview.counts,
                "errors": [e.__dict__ for e in preview.errors[:1000]],
                "rows": [
                    {
                        "row": r.row,
                        "action": r.action,
                        "values": {k: str(v) for k, v in r.values.items() if not k.startswith("__")},
                    }
                    for r in preview.rows[:limit]
                ],
            }
        }

    @extend_schema(
        request={
            "multipart/form-data": OpenApiRequest(
                inline_serializer(
                    "ImportUpload",
                    {
                        "file": serializers.FileField(help_text="A CSV file (.csv or .txt) with a header row."),
                        "kind": serializers.ChoiceField(choices=["contacts", "companies"]),
                    },
                ),
                # what the upload check (codex.uploads) accepts: a .csv name, a CSV content type
                encoding={
                    "file": {
                        "contentType": "text/csv",
                        "headers": {
                            "Content-Disposition": {
                                "schema": {
                                    "type": "string",
                                    "example": 'form-data; name="file"; filename="contacts.csv"',
                                }
                            }
                        },
                    }
                },
            )
        },
        responses={201: ImportJobSerializer},
    )
    def create(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": "Attach a CSV file."})
        try:
            job = services.import_start(
                actor=request.user, tenant=_tenant(request), kind=request.data.get("kind", "contacts"), upload=upload
            )
        except engine.ImportFileError as exc:
            raise ValidationError({"file": str(exc)}) from exc
        preview = self._configure(job)
        return Response(self._preview_body(job, preview), status=status.HTTP_201_CREATED)

    def _configure(self, job, **changes):
        try:
            return services.import_configure(actor=self.request.user, job=job, **changes)
        except services.StateConflict:
            raise  # a finished import: 409 (codex.api.errors maps it), not a field error
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from exc

    def retrieve(self, request, *args, **kwargs):
        job = access.import_for_user(request.user, kwargs["pk"])
        if job.status != "pending":
            return Response(ImportJobSerializer(job).data)
        if not access.can_write(request.user):
            return Response(ImportJobSerializer(job).data)
        try:
            preview = services.import_configure(actor=request.user, job=job)
        except DjangoValidationError as exc:
            # The mapping is not usable yet: show the job and what to fix (POST .../preview/).
            return Response(ImportJobSerializer(job).data | {"mapping_errors": exc.message_dict.get("mapping", [])})
        return Response(self._preview_body(job, preview))

    @extend_schema(
        request=ImportConfigureSerializer,
        responses=ImportJobSerializer,
        summary="Set the column mapping / duplicates mode and get the preview",
        description="`mapping` maps the file's columns (as in the job's `headers`) to the kind's fields; "
        "the required fields (a contact's first name, a company's name) must each get a column, or it is a "
        "400 naming `mapping` (the columns are the file's, so no schema can list them). A finished import "
        "is a 409.",
        examples=[
            OpenApiExample(
                "Map the columns",
                value={"mapping": {"First Name": "first_name", "E-mail": "email", "Notes": ""}, "duplicates": "merge"},
                request_only=True,
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        job = access.import_for_user(request.user, pk, write=True)
        data = ImportConfigureSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preview = self._configure(
            job, mapping=data.validated_data.get("mapping"), duplicates=data.validated_data.get("duplicates")
        )
        return Response(self._preview_body(job, preview))

    @extend_schema(request=None, responses=ImportJobSerializer, summary="Import everything or nothing")
    @action(detail=True, methods=["post"])
    def commit(self, request, pk=None):
        job = access.import_for_user(request.user, pk, write=True)
        try:
            services.import_commit(actor=request.user, tenant=_tenant(request), job=job)
        except engine.ImportRejected as exc:
            raise ValidationError({"rows": [f"row {e.row}, {e.field}: {e.message}" for e in exc.errors[:200]]}) from exc
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data)
