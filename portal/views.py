"""Portal pages: the static app's shell, a client's invitation, signed downloads; and the staff
side (a client's portal page: invitation, users, vault; the firm's posts)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.http import FileResponse, Http404, HttpResponse
from django.middleware.csp import get_nonce
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from codex.security.net import client_ip
from codex.security.ratelimit import rate_limit
from codex.tables import TableFilterForm, table_page
from codex.templatetags.codex_ui import THEME_COOKIE, THEMES
from tenants.accounts import services as account_services
from tenants.accounts.models import Role, User
from tenants.services import audit_record

from . import access, reports, services
from .forms import ClientPasswordForm, DisclosuresForm, DocumentUploadForm, InviteClientForm, PostForm, ReportRunForm
from .models import ClientAccess, Document, Post, PostAudience, ReportRun, ReportSettings, Visibility

LOGIN_BACKEND = "codex.security.auth.ThrottledModelBackend"
SHELL = Path(settings.BASE_DIR) / "frontend" / "dist" / "index.html"


def _errors_to_form(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- the client's side --------------------------------------------------------------------------------
def app(request, rest: str = ""):
    """The built static app's ``index.html`` for ``/portal/`` and its deep links (the app routes on
    the client). Its assets are served by whitenoise under ``/static/portal/``; the shell comes
    through Django so it carries the security headers (CSP) of every page. Holds no data: the app
    reads ``/api/v1/portal/`` and sends a visitor without a session to sign in."""
    if not SHELL.exists():
        return render(request, "portal/not_built.html")
    # Each script carries this response's CSP nonce, as on every server-rendered page.
    nonce = get_nonce(request)
    html = SHELL.read_text()
    # The colour theme the person chose (the staff UI's cookie, set by the portal's switch too), on
    # the first paint; no cookie: the system's preference (prefers-color-scheme) applies.
    chosen = request.COOKIES.get(THEME_COOKIE, "")
    if chosen in THEMES:
        html = html.replace("<html ", f'<html data-theme="{chosen}" ', 1)
    if nonce is not None:
        html = html.replace("<script ", f'<script nonce="{nonce}" ')
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


@rate_limit("invitation_accept")
def accept_invitation(request, token: str):
    try:
        invitation = account_services.invitation_from_token(token)
    except ValidationError as exc:
        audit_record(
            action="portal.invitation_refused",
            tenant=request.tenant,
            ip=client_ip(request),
            details={"reason": " ".join(exc.messages)[:200]},
        )
        return render(request, "accounts/invitation_invalid.html", {"reason": " ".join(exc.messages)}, status=400)
    form = ClientPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.client_invitation_accept(
                token=token, password=form.cleaned_data["password"], tenant=request.tenant, ip=client_ip(request)
            )
        except ValidationError as exc:
            if not hasattr(exc, "error_dict"):
                return render(
                    request, "accounts/invitation_invalid.html", {"reason": " ".join(exc.messages)}, status=400
                )
            _errors_to_form(form, exc)
        else:
            login(request, user, backend=LOGIN_BACKEND)
            return redirect("/portal/")
    return render(request, "portal/accept_invitation.html", {"form": form, "invitation": invitation})


def download(request, token: str):
    """A signed download: the token names the user and the document; the user's access is checked
    again now. Every download and every refusal is audited (``portal.services.download_check``)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    document = services.download_check(token=token, user=request.user, tenant=request.tenant, ip=client_ip(request))
    response = FileResponse(
        document.file.open("rb"), as_attachment=True, filename=document.filename, content_type=document.content_type
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- the staff side ---------------------------------------------------------------------------------------
@login_required
def client_page(request, pk: int):
    """A client's portal, seen by staff: invite, client users, the vault (upload, share, internal)."""
    contact = access.staff_contact(request.user, pk)
    upload_form = DocumentUploadForm()
    households = services.contact_households(actor=request.user, contact=contact)
    invite_form = InviteClientForm(households=households)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "invite":
            invite_form = InviteClientForm(request.POST, households=households)
            if invite_form.is_valid():
                try:
                    invitation = services.client_invite(
                        actor=request.user,
                        contact=contact,
                        tenant=request.tenant,
                        email=invite_form.cleaned_data["email"],
                        household=invite_form.cleaned_data.get("household"),
                    )
                except ValidationError as exc:
                    _errors_to_form(invite_form, exc)
                else:
                    messages.success(request, f"Invitation sent to {invitation.email}.")
                    return redirect("portal:client", pk=contact.pk)
        elif action == "upload":
            upload_form = DocumentUploadForm(request.POST, request.FILES)
            if upload_form.is_valid():
                d = upload_form.cleaned_data
                try:
                    services.document_upload(
                        actor=request.user,
                        tenant=request.tenant,
                        upload=d["file"],
                        title=d["title"],
                        contact=contact,
                        kind=d["kind"],
                        visibility=d["visibility"],
                        period_end=d["period_end"],
                    )
                except ValidationError as exc:
                    _errors_to_form(upload_form, exc)
                else:
                    messages.success(request, "Document stored.")
                    return redirect("portal:client", pk=contact.pk)
        elif action == "report":
            if not request.user.can_write:
                raise PermissionDenied("Your role may read this client but not change it.")
            document = services.report_generate(
                actor=request.user,
                tenant=request.tenant,
                contact=contact,
                quarter_end=reports.last_quarter_end(timezone.localdate()),
            )
            if document is None:
                messages.error(request, "No portfolio of this client had transactions by the end of the quarter.")
            else:
                messages.success(request, f"{document.title} stored and shared with the client.")
            return redirect("portal:client", pk=contact.pk)
        else:
            raise PermissionDenied("Unknown action.")
    documents = Document.objects.filter(contact=contact).select_related("uploaded_by")
    clients = ClientAccess.objects.filter(contact=contact).select_related("user", "household")
    return render(
        request,
        "portal/client.html",
        {
            "contact": contact,
            "documents": documents,
            "clients": clients,
            "upload_form": upload_form,
            "invite_form": invite_form,
            "can_write": request.user.can_write,
        },
    )


@login_required
@require_POST
def document_visibility(request, pk: int):
    document = access.staff_document(request.user, pk, write=True)
    visibility = request.POST.get("visibility", "")
    try:
        services.document_set_visibility(
            actor=request.user, tenant=request.tenant, document=document, visibility=visibility
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("portal:client", pk=document.contact_id) if document.contact_id else redirect("portal:posts")


@login_required
def document_open(request, pk: int):
    """Staff open a document through the same signed, audited download as clients."""
    document = access.staff_document(request.user, pk)
    return redirect("portal:download", token=services.download_token(document=document, user=request.user))


@login_required
@require_POST
def end_client_access(request, pk: int):
    client = get_object_or_404(User, pk=pk, role=Role.CLIENT)
    try:
        contact_id = client.client_access.contact_id
    except ClientAccess.DoesNotExist as exc:
        raise Http404("Not found.") from exc
    services.client_access_end(actor=request.user, client=client, tenant=request.tenant)
    messages.success(request, f"{client.email} can no longer sign in to the portal.")
    return redirect("portal:client", pk=contact_id)


class PostFilterForm(TableFilterForm):
    state = forms.ChoiceField(
        label="State",
        choices=[("", "Published and drafts"), ("published", "Published"), ("draft", "Drafts")],
        required=False,
    )
    audience = forms.ChoiceField(
        label="Audience", choices=[("", "Any audience"), *PostAudience.choices], required=False
    )
    title = forms.CharField(label="Title", max_length=200, required=False)

    lookups: ClassVar = {
        "state": lambda qs, value: qs.filter(published_at__isnull=value == "draft"),
        "audience": "audience",
        "title": "title__icontains",
    }


POST_SORTS = {
    "published": F("published_at").asc(nulls_last=True),
    "title": "title",
    "audience": "audience",
    "created": "created_at",
}


@login_required
def posts(request):
    """The firm's posts to its clients (owners and admins write; everyone on staff reads)."""
    if access.is_client(request.user):
        raise Http404("Not found.")
    form = PostForm(request.POST or None)
    if request.method == "POST":
        if not request.user.is_manager:
            raise PermissionDenied("Only owners and admins publish to clients.")
        if form.is_valid():
            d = form.cleaned_data
            try:
                services.post_save(
                    actor=request.user,
                    tenant=request.tenant,
                    title=d["title"],
                    body=d["body"],
                    audience=d["audience"],
                    audience_tag=d["audience_tag"],
                    publish=d["publish"],
                )
            except ValidationError as exc:
                _errors_to_form(form, exc)
            else:
                messages.success(request, "Post saved.")
                return redirect("portal:posts")
    firm_documents = Document.objects.filter(contact__isnull=True)
    filters = PostFilterForm(request.GET)
    table = table_page(request, filters.filter(Post.objects.all()), sorts=POST_SORTS, default="-published")
    return render(
        request,
        "portal/posts.html",
        {
            "form": form,
            "posts": table.page.object_list,
            "page": table.page,
            "filters": filters,
            "table_sort": table.sort,
            "firm_documents": firm_documents,
            "is_manager": request.user.is_manager,
            "shared": Visibility.SHARED,
        },
    )


class ReportRunFilterForm(TableFilterForm):
    status = forms.ChoiceField(label="Status", choices=[("", "Any status"), *ReportRun.Status.choices], required=False)
    quarter_end = forms.DateField(
        label="Quarter ending", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    lookups: ClassVar = {"status": "status", "quarter_end": "quarter_end"}


REPORT_RUN_SORTS = {"started": "created_at", "quarter": "quarter_end", "status": "status", "failed": "failed"}


@login_required
def report_runs(request):
    """Quarterly reports for all clients: start a run, watch its progress; the firm's disclosures."""
    if access.is_client(request.user):
        raise Http404("Not found.")
    settings_row = ReportSettings.objects.first() or ReportSettings()
    run_form = ReportRunForm(initial={"quarter_end": reports.last_quarter_end(timezone.localdate())})
    disclosures_form = DisclosuresForm(initial={"disclosures": settings_row.disclosures})
    if request.method == "POST":
        if not request.user.is_manager:
            raise PermissionDenied("Only owners and admins run the firm's reports.")
        if request.POST.get("action") == "disclosures":
            disclosures_form = DisclosuresForm(request.POST)
            if disclosures_form.is_valid():
                settings_row.disclosures = disclosures_form.cleaned_data["disclosures"]
                settings_row.save()
                messages.success(request, "Disclosures saved.")
                return redirect("portal:reports")
        else:
            run_form = ReportRunForm(request.POST)
            if run_form.is_valid():
                try:
                    services.report_run_start(
                        actor=request.user, tenant=request.tenant, quarter_end=run_form.cleaned_data["quarter_end"]
                    )
                except ValidationError as exc:
                    _errors_to_form(run_form, exc)
                else:
                    messages.success(request, "Reports queued.")
                    return redirect("portal:reports")
    filters = ReportRunFilterForm(request.GET)
    table = table_page(request, filters.filter(ReportRun.objects.all()), sorts=REPORT_RUN_SORTS, default="-started")
    return render(
        request,
        "portal/reports.html",
        {
            "page": table.page,
            "runs": table.page.object_list,
            "filters": filters,
            "table_sort": table.sort,
            "run_form": run_form,
            "disclosures_form": disclosures_form,
            "is_manager": request.user.is_manager,
        },
    )
