"""``Idempotency-Key`` for API POSTs that create things (Stripe's semantics), usable by any app.

Decorate a DRF view method::

    class PlanChangeView(APIView):
        @idempotent
        def post(self, request): ...

- No header: the request runs normally.
- First request with a key: a record (firm, key) is inserted *before* the view runs, in the same
  transaction; a concurrent request with the same key waits on the unique index, then replays.
  A 2xx response is stored (status and JSON body) and replayed to later requests with the same key
  and the same method, path and body, with the header ``Idempotent-Replayed: true``.
- Same key, different method, path or body: 409 ``idempotency_key_reused``.
- A non-2xx response or an exception is not stored (nothing was created), so the key can be retried.

Records live in the public schema (``billing.IdempotencyRecord``, keyed by firm) and are kept for
``CODEX_IDEMPOTENCY_DAYS`` days.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from functools import wraps

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from .errors import Conflict

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def _record_model():
    return apps.get_model("billing", "IdempotencyRecord")


def request_fingerprint(request) -> tuple[str, str]:
    scope = f"{request.method} {request.path}"
    body = json.dumps(request.data, sort_keys=True, default=str, separators=(",", ":"))
    return scope, hashlib.sha256(f"{scope}\n{body}".encode()).hexdigest()


def _replay(record, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise Conflict(
            "This Idempotency-Key was already used with a different request.",
            {"idempotency_key": record.key, "first_used_on": record.scope},
            code="idempotency_key_reused",
        )
    return Response(record.response_body, status=record.response_status, headers={"Idempotent-Replayed": "true"})


def idempotent(view_method):
    @wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return view_method(self, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            raise ValidationError({"idempotency_key": f"At most {MAX_KEY_LENGTH} characters."})
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            raise ValidationError({"idempotency_key": "Idempotency keys need a firm."})
        Record = _record_model()
        scope, request_hash = request_fingerprint(request)
        ttl = timedelta(days=getattr(settings, "CODEX_IDEMPOTENCY_DAYS", 7))
        Record.objects.filter(tenant_id=tenant.pk, key=key, created_at__lt=timezone.now() - ttl).delete()
        existing = Record.objects.filter(tenant_id=tenant.pk, key=key).first()
        if existing is not None:
            return _replay(existing, request_hash)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = Record.objects.create(
                        tenant_id=tenant.pk,
                        key=key,
                        scope=scope[:255],
                        request_hash=request_hash,
                        response_status=0,
                        response_body={},
                    )
            except IntegrityError:
                # A concurrent request with this key committed first: answer as it did.
                return _replay(Record.objects.get(tenant_id=tenant.pk, key=key), request_hash)
            response = view_method(self, request, *args, **kwargs)
            if 200 <= response.status_code < 300:
                record.response_status = response.status_code
                record.response_body = json.loads(JSONRenderer().render(response.data) or b"null")
                record.save(update_fields=["response_status", "response_body"])
            else:
                record.delete()
            return response

    return wrapper
