"""``Idempotency-Key`` on every API POST (Stripe's semantics), through one DRF view mixin.

Every API view class inherits ``IdempotentPostMixin`` (``tests/security/test_idempotency_schema.py``
checks each POST operation of the OpenAPI schema). It uses DRF's documented hooks only:
``initial`` (after authentication, permissions and throttles), ``handle_exception`` and
``finalize_response``, and runs the request in one transaction when a key is sent.

- No header, or not a POST: the request runs as usual.
- Keys are scoped per firm and credential (an API key, or a user however they sign in): the same
  key sent by another key, user or firm is another key.
- First request with a key: a record (firm, credential, key) is inserted *before* the view runs, in
  the same transaction as the view's writes; a concurrent request with the same key waits on the
  unique index, then replays. A 2xx response is stored (status and body, sealed with
  ``codex.crypto`` since some carry a secret shown once, e.g. a new API key) and replayed to later
  requests with the same key, method, path and body, with the header ``Idempotent-Replayed: true``.
- Same key, different method, path or body: 422 ``idempotency_key_reused``.
- A non-2xx response or an exception is not stored (nothing was created), so the key can be retried.
- Anonymous POSTs (only ``/auth/token/``, which takes a password) ignore the key: there is no
  credential to scope it to, and a hash of a password-bearing body must not be kept.

Records live in the public schema (``billing.IdempotencyRecord``) and are kept
``CODEX_IDEMPOTENCY_DAYS`` days.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from codex import crypto

from .errors import ApiError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(ApiError):
    def __init__(self, *, key: str, scope: str):
        super().__init__(
            status_code=422,
            code="idempotency_key_reused",
            message="This Idempotency-Key was already used with a different request.",
            details={"idempotency_key": key, "first_used_on": scope},
        )


class _Replay(Exception):  # noqa: N818 - not an error: carries the stored response out of initial()
    def __init__(self, response: Response):
        self.response = response


def _record_model():
    return apps.get_model("billing", "IdempotencyRecord")


def _credential(request) -> str | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    api_key = getattr(user, "api_key", None)
    if api_key is not None:
        return f"api-key:{api_key.pk}"
    return f"user:{user.pk}"


def _body_digest(request) -> str:
    digest = hashlib.sha256()
    data = request.data  # any JSON value (an object, but also an array or a scalar), or a QueryDict
    if hasattr(data, "lists"):  # form or multipart: every value of every field; files are hashed below
        data = {key: [v for v in values if not hasattr(v, "chunks")] for key, values in data.lists()}
    digest.update(json.dumps(data, sort_keys=True, default=str, separators=(",", ":")).encode())
    for name in sorted(request.FILES):
        for upload in request.FILES.getlist(name):
            digest.update(f"\nfile {name} {upload.name} {upload.size}\n".encode())
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
    return digest.hexdigest()


def request_fingerprint(request) -> tuple[str, str]:
    scope = f"{request.method} {request.path}"
    return scope, hashlib.sha256(f"{scope}\n{_body_digest(request)}".encode()).hexdigest()


def _replay(record, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused(key=record.key, scope=record.scope)
    body = json.loads(crypto.unseal(record.response_sealed))
    return Response(body, status=record.response_status, headers={REPLAYED_HEADER: "true"})


def idempotency_begin(request):
    """The record this request's response is to be stored in, or None when the key does not apply.

    Raises ``_Replay`` carrying the stored response for a repeated request, IdempotencyKeyReused
    for the key sent with another request, ValidationError for a malformed key."""
    key = request.headers.get(HEADER, "").strip()
    if request.method != "POST" or not key:
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError({"idempotency_key": f"At most {MAX_KEY_LENGTH} characters."})
    credential = _credential(request)
    if credential is None:
        return None
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        raise ValidationError({"idempotency_key": "Idempotency keys need a firm."})
    Record = _record_model()
    scope, request_hash = request_fingerprint(request)
    mine = Record.objects.filter(tenant_id=tenant.pk, credential=credential, key=key)
    ttl = timedelta(days=settings.CODEX_IDEMPOTENCY_DAYS)
    mine.filter(created_at__lt=timezone.now() - ttl).delete()
    existing = mine.first()
    if existing is not None:
        raise _Replay(_replay(existing, request_hash))
    try:
        with transaction.atomic():
            return Record.objects.create(
                tenant_id=tenant.pk,
                credential=credential,
                key=key,
                scope=scope[:255],
                request_hash=request_hash,
                response_status=0,
            )
    except IntegrityError:
        # A concurrent request with this key committed first: answer as it did.
        raise _Replay(_replay(mine.get(), request_hash)) from None


def idempotency_finish(record, response) -> None:
    """Keep a 2xx response for replays; release the key otherwise."""
    data = getattr(response, "data", None)
    if 200 <= response.status_code < 300 and data is not None:
        record.response_status = response.status_code
        record.response_sealed = crypto.seal(JSONRenderer().render(data).decode())
        record.save(update_fields=["response_status", "response_sealed"])
    else:
        record.delete()


class IdempotentPostMixin:
    """Honour ``Idempotency-Key`` on the view's POSTs (see the module docstring)."""

    def dispatch(self, request, *args, **kwargs):
        if request.method == "POST" and request.headers.get(HEADER):
            # The record and the view's writes commit together, or not at all.
            with transaction.atomic():
                return super().dispatch(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        self.idempotency_record = None
        super().initial(request, *args, **kwargs)
        self.idempotency_record = idempotency_begin(request)

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = getattr(self, "idempotency_record", None)
        if record is not None:
            self.idempotency_record = None
            idempotency_finish(record, response)
        return response
