"""``Idempotency-Key`` for the web UI's create forms: a second submission of the same form (a
double click, the browser's "resend") does not create a second record.

``@idempotent_form`` on a page view puts a fresh key on the request for the form to carry
(``request.idempotency_key``, a hidden ``idempotency_key`` field in the template). A POST with a key
is handled with the API's semantics (``codex.api.idempotency``), on the same records, scoped to the
firm and the signed-in user:

- the first successful POST (a redirect) is stored; the same key and the same fields again are
  answered with the same redirect, and nothing runs twice;
- the same key with other fields: 422 with a page that says so;
- a POST that does not succeed (the form redisplayed with errors) releases the key, and the page
  carries the same key for the corrected submission;
- a view whose success is a page rather than a redirect (the API key page shows the new key once)
  calls ``form_succeeded(request)``: that page is stored sealed and a resubmission gets it again.

Templates carry the key with ``{% idempotency_field %}`` (``codex_ui``), inside the form.

The CSRF token is not part of the compared fields (it rotates at sign-in).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from functools import wraps

from django.apps import apps
from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string

from codex import crypto

FIELD = "idempotency_key"
_NOT_COMPARED = {FIELD, "csrfmiddlewaretoken"}
MAX_KEY_LENGTH = 255


def _fingerprint(request) -> tuple[str, str]:
    scope = f"{request.method} {request.path}"
    fields = {name: values for name, values in request.POST.lists() if name not in _NOT_COMPARED}
    digest = hashlib.sha256(f"{scope}\n".encode())
    digest.update(json.dumps(fields, sort_keys=True).encode())
    for name in sorted(request.FILES):
        for upload in request.FILES.getlist(name):
            digest.update(f"\nfile {name} {upload.name} {upload.size}\n".encode())
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
    return scope, digest.hexdigest()


def _reused(request) -> HttpResponse:
    body = render_to_string(
        "422_idempotency.html",
        {"title": "This form was already sent with other values", "back": request.path},
        request=request,
    )
    return HttpResponse(body, status=422)


def _answer(record, request_hash: str, request) -> HttpResponse:
    if record.request_hash != request_hash:
        return _reused(request)
    stored = json.loads(crypto.unseal(record.response_sealed))
    if "location" in stored:
        response: HttpResponse = HttpResponseRedirect(stored["location"])
    else:
        response = HttpResponse(stored["body"], status=record.response_status, content_type=stored["content_type"])
    response["Idempotent-Replayed"] = "true"
    return response


def form_succeeded(request) -> None:
    """Mark this request's rendered page as the form's success, to be replayed to a resubmission.
    Call it before rendering: the page's next form gets a fresh key (this one is spent)."""
    request.idempotent_form_succeeded = True
    request.idempotency_key = uuid.uuid4().hex


def idempotent_form(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        posted = request.POST.get(FIELD, "").strip() if request.method == "POST" else ""
        tenant = getattr(request, "tenant", None)
        user = getattr(request, "user", None)
        applies = bool(posted) and tenant is not None and user is not None and user.is_authenticated
        request.idempotency_key = posted[:MAX_KEY_LENGTH] if posted else uuid.uuid4().hex
        if not applies or len(posted) > MAX_KEY_LENGTH:
            return view(request, *args, **kwargs)
        Record = apps.get_model("billing", "IdempotencyRecord")
        credential = f"user:{user.pk}"
        key = f"form:{posted}"
        scope, request_hash = _fingerprint(request)
        mine = Record.objects.filter(tenant_id=tenant.pk, credential=credential, key=key)
        existing = mine.first()
        if existing is not None:
            return _answer(existing, request_hash, request)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = Record.objects.create(
                        tenant_id=tenant.pk,
                        credential=credential,
                        key=key,
                        scope=scope[:255],
                        request_hash=request_hash,
                        response_status=0,
                    )
            except IntegrityError:
                # A concurrent submission with this key committed first: answer as it was.
                return _answer(mine.get(), request_hash, request)
            response = view(request, *args, **kwargs)
            if response.status_code in (301, 302, 303) and response.has_header("Location"):
                record.response_status = response.status_code
                record.response_sealed = crypto.seal(json.dumps({"location": response["Location"]}))
                record.save(update_fields=["response_status", "response_sealed"])
            elif response.status_code == 200 and getattr(request, "idempotent_form_succeeded", False):
                # A page that may show a secret once (a new API key): sealed like the API's replays.
                stored = {"body": response.content.decode(), "content_type": response["Content-Type"]}
                record.response_status = 200
                record.response_sealed = crypto.seal(json.dumps(stored))
                record.save(update_fields=["response_status", "response_sealed"])
            else:
                record.delete()
            return response

    return wrapper
