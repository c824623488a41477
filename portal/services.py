"""Portal writes: client invitations and access, the document vault, firm posts.

Keyword-only, atomic, audited (tenants' audit log: ``tenants.services.audit_record``). Each raises
``ValidationError`` naming the field, or ``PermissionDenied`` / ``Http404`` from ``portal.access``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath

import markdown
import nh3
from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.db.models.fields.files import FieldFile
from django.http import Http404
from django.utils import timezone

from codex.db import current_schema
from codex.notifications.models import NotificationKind
from codex.notifications.services import notification_send
from codex.uploads import KINDS, validate_upload
from crm.models import Contact, Lifecycle
from fees import selectors as fee_selectors
from fees.models import BillingGroup, FeeStatement
from tenants import links
from tenants.accounts import services as account_services
from tenants.accounts.models import Invitation, Role, User
from tenants.services import audit_record

from . import access, reports
from .models import (
    ClientAccess,
    ClientInvitation,
    Document,
    DocumentKind,
    Post,
    PostAudience,
    ReportRun,
    ReportSettings,
    Visibility,
)
from .tasks import report_run

DOWNLOAD_SALT = "codex.portal.download"
# What the vault accepts: the upload validator's kinds (extension, declared type, content sniffing).
VAULT_KINDS = ("pdf", "csv", "png")


# --- client users ------------------------------------------------------------------------------------
def household_check(*, actor: User, contact: Contact, household: BillingGroup) -> BillingGroup:
    """``household`` if ``contact`` belongs to it (its client, or the client of one of its accounts)
    and ``actor`` sees it (``fees.selectors.groups_for``); ValidationError naming ``household``."""
    visible = fee_selectors.groups_for(actor).filter(pk=household.pk)
    member = visible.filter(Q(client=contact) | Q(accounts__portfolio__client=contact)).exists()
    if not member:
        raise ValidationError({"household": "Choose a household this client belongs to."})
    return household


def contact_households(*, actor: User, contact: Contact):
    """The households ``contact`` belongs to that ``actor`` sees (for the invitation form)."""
    return (
        fee_selectors.groups_for(actor)
        .filter(Q(client=contact) | Q(accounts__portfolio__client=contact))
        .distinct()
        .order_by("name", "id")
    )


def client_invite(
    *, actor: User, contact: Contact, tenant, email: str = "", household: BillingGroup | None = None
) -> Invitation:
    """Invite ``contact`` (at ``email``, default the contact's) to the client portal and e-mail the
    signed link (``CODEX_INVITATION_MAX_AGE``). Any writer who has the contact in their book may invite.
    With ``household`` (a billing group the contact belongs to), the client user will see every
    portfolio of that household instead of the contact's own (docs/decisions/1020).
    Atomic; raises ValidationError by field (``email``, ``contact``, ``household``)."""
    access.staff_contact(actor, contact.pk, write=True)
    if household is not None:
        household_check(actor=actor, contact=contact, household=household)
    email = (email or contact.email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": "The client needs a valid e-mail address to be invited."}) from exc
    if contact.lifecycle == Lifecycle.FORMER:
        raise ValidationError({"contact": "A former client cannot be invited to the portal."})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "A user with this e-mail address already exists in the firm."})
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(email=email, role=Role.CLIENT, invited_by=actor)
            ClientInvitation.objects.create(invitation=invitation, contact=contact, household=household)
    except IntegrityError as exc:
        raise ValidationError({"email": "An invitation to this address is already pending."}) from exc
    link = links.firm_page_url(
        tenant.slug, "portal:accept-invitation", args=[account_services.invitation_token(invitation)]
    )
    days = settings.CODEX_INVITATION_MAX_AGE // 86400
    transaction.on_commit(
        lambda: send_mail(
            f"Your client portal at {tenant.name}",
            f"{actor} invited you to {tenant.name}'s client portal, where you can see your portfolios, "
            f"statements and documents.\n\nSet your password: {link}\n\nThe link expires in {days} days.",
            None,
            [email],
        )
    )
    audit_record(
        action="portal.client_invited",
        actor=actor.email,
        tenant=tenant,
        target=email,
        details={"contact": contact.pk, "household": household.pk if household is not None else None},
    )
    return invitation


def client_invitation_accept(*, token: str, password: str, tenant, ip: str | None = None) -> User:
    """Create the client user of a client invitation and bind them to its contact.

    Atomic: the invitation is consumed only with the user and the binding. ValidationError for an
    expired, forged, used or withdrawn link or a former client (each audited as
    ``portal.invitation_refused``, outside the refused write so the record stays), or a weak password
    (``password``)."""
    try:
        invitation = account_services.invitation_from_token(token)
        binding = ClientInvitation.objects.select_related("contact").filter(invitation=invitation).first()
        if invitation.role != Role.CLIENT or binding is None:
            raise ValidationError("This invitation link is not valid.")
        if binding.contact.lifecycle == Lifecycle.FORMER:
            raise ValidationError("This invitation is no longer valid. Please contact your advisor.")
    except ValidationError as exc:
        audit_record(
            action="portal.invitation_refused", tenant=tenant, ip=ip, details={"reason": " ".join(exc.messages)[:200]}
        )
        raise
    with transaction.atomic():
        user = account_services.invitation_accept(
            token=token,
            first_name=binding.contact.first_name,
            last_name=binding.contact.last_name,
            password=password,
            tenant=tenant,
        )
        ClientAccess.objects.create(
            user=user, contact=binding.contact, household=binding.household, invited_by=invitation.invited_by
        )
        audit_record(
            action="portal.client_joined",
            actor=user.email,
            tenant=tenant,
            target=user.email,
            details={"contact": binding.contact.pk, "household": binding.household_id},
            ip=ip,
        )
    return user


@transaction.atomic
def client_access_end(*, actor: User, client: User, tenant) -> User:
    """Deactivate a client user: sessions end now; the binding stays for the record."""
    access.staff_contact(actor, ClientAccess.objects.get(user=client).contact_id, write=True)
    if client.role != Role.CLIENT:
        raise PermissionDenied("Not a client user.")
    User.objects.filter(pk=client.pk).update(is_active=False)
    account_services.user_sign_out_everywhere(user=client)
    audit_record(action="portal.client_access_ended", actor=actor.email, tenant=tenant, target=client.email)
    return client


# --- the vault -----------------------------------------------------------------------------------------
def _upload_kind(upload) -> str:
    """The upload validator's kind for the file's extension (then checked against type and content)."""
    suffix = PurePosixPath((getattr(upload, "name", "") or "").lower()).suffix
    for kind in VAULT_KINDS:
        if suffix in KINDS[kind].extensions:
            return kind
    raise ValidationError("Upload a PDF, CSV or PNG file.", code="upload_extension")


def scan_for_viruses(upload) -> None:
    """The virus-scan hook (docs/portal.md): a deployment connects a scanner here (e.g. ClamAV via
    ``clamd``) and raises ValidationError({"file": ...}) for an infected file. None is configured in
    development: the upload validator's type and content checks are what run."""


def document_upload(
    *,
    actor: User,
    tenant,
    upload,
    title: str,
    contact: Contact | None,
    kind: str = DocumentKind.OTHER,
    visibility: str = Visibility.INTERNAL,
    period_end=None,
) -> Document:
    """Store ``upload`` in the vault for ``contact`` (None: firm-wide, managers only). The file is
    checked by the upload validator (extension, declared type, content, ``CODEX_VAULT_MAX_BYTES``).
    Atomic: a refused file leaves no row and no stored file."""
    if contact is not None:
        access.staff_contact(actor, contact.pk, write=True)
    elif not getattr(actor, "is_manager", False):
        raise PermissionDenied("Only owners and admins publish firm-wide documents.")
    errors = {}
    title = (title or "").strip()
    if not title:
        errors["title"] = "Give the document a title."
    if kind not in DocumentKind.values:
        errors["kind"] = f"Choose one of {', '.join(DocumentKind.values)}."
    if visibility not in Visibility.values:
        errors["visibility"] = f"Choose one of {', '.join(Visibility.values)}."
    if upload is None:
        errors["file"] = "Choose a file."
    if errors:
        raise ValidationError(errors)
    try:
        validate_upload(upload, kind=_upload_kind(upload), max_bytes=settings.CODEX_VAULT_MAX_BYTES)
    except ValidationError as exc:
        audit_record(
            action="portal.upload_refused",
            actor=actor.email,
            tenant=tenant,
            target=(getattr(upload, "name", "") or "")[:200],
            details={"reason": exc.messages[0], "code": exc.code or ""},
        )
        raise ValidationError({"file": exc.messages}) from exc
    scan_for_viruses(upload)
    with transaction.atomic():
        return _document_write(
            actor=actor,
            tenant=tenant,
            contact=contact,
            title=title,
            kind=kind,
            visibility=visibility,
            period_end=period_end,
            filename=PurePosixPath(upload.name).name[:200],
            content_type=(getattr(upload, "content_type", "") or "application/octet-stream").split(";")[0],
            chunks=upload.chunks(),
            upload=upload,
        )


def document_store(
    *,
    actor: User | None,
    tenant,
    contact: Contact | None,
    title: str,
    kind: str,
    visibility: str,
    filename: str,
    content_type: str,
    content: bytes,
    period_end=None,
) -> Document:
    """Store bytes the platform made itself (a quarterly report, later the fees app's statements):
    no upload check, the same storage, audit and history. Atomic."""
    with transaction.atomic():
        return _document_write(
            actor=actor,
            tenant=tenant,
            contact=contact,
            title=title,
            kind=kind,
            visibility=visibility,
            period_end=period_end,
            filename=filename,
            content_type=content_type,
            chunks=[content],
            upload=ContentFile(content, name=filename),
        )


def _document_write(
    *, actor, tenant, contact, title, kind, visibility, period_end, filename, content_type, chunks, upload
):
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    if hasattr(upload, "seek"):
        upload.seek(0)
    document = Document(
        contact=contact,
        title=title[:200],
        kind=kind,
        visibility=visibility,
        filename=filename,
        content_type=content_type,
        size=size,
        sha256=digest.hexdigest(),
        period_end=period_end,
        uploaded_by=actor if getattr(actor, "pk", None) else None,
    )
    document.file.save(filename, upload, save=False)
    try:
        document.save()
        audit_record(
            action="portal.document_uploaded",
            actor=getattr(actor, "email", "") or "system",
            tenant=tenant,
            target=f"document:{document.pk}",
            details={"contact": contact.pk if contact else None, "kind": kind},
        )
    except Exception:
        # Nothing half-written: the stored file goes with the refused row (then the error propagates).
        document.file.delete(save=False)
        raise
    return document


@transaction.atomic
def document_set_visibility(*, actor: User, tenant, document: Document, visibility: str) -> Document:
    document = access.staff_document(actor, document.pk, write=True)
    if visibility not in Visibility.values:
        raise ValidationError({"visibility": f"Choose one of {', '.join(Visibility.values)}."})
    previous = document.visibility
    document.visibility = visibility
    document.save(update_fields=["visibility"])
    audit_record(
        action="portal.document_visibility",
        actor=actor.email,
        tenant=tenant,
        target=f"document:{document.pk}",
        details={"from": previous, "to": visibility},
    )
    return document


@dataclass(frozen=True)
class Download:
    """What a signed link opens: a vault document or an issued fee statement (the fees app's file)."""

    file: FieldFile
    filename: str
    content_type: str


def download_token(*, user: User, document: Document | None = None, fee_statement: FeeStatement | None = None) -> str:
    """A signed token for one user and one document (or fee statement) in this firm; valid
    ``CODEX_DOWNLOAD_LINK_MAX_AGE`` seconds. The download checks the user's access again: the token
    alone opens nothing."""
    if fee_statement is not None:
        return signing.dumps({"f": fee_statement.pk, "u": user.pk, "s": current_schema()}, salt=DOWNLOAD_SALT)
    if document is None:
        raise TypeError("download_token needs a document or a fee statement")
    return signing.dumps({"d": document.pk, "u": user.pk, "s": current_schema()}, salt=DOWNLOAD_SALT)


def _fee_statement_download(data: dict, user) -> tuple[str, Download]:
    """A client's own fee statement (``portal.access``); staff open statements in the fees app."""
    if not access.is_client(user):
        raise Http404("Not found.")
    statement = access.client_fee_statement(access.client_scope(user), data.get("f"))
    number = statement.invoice.number
    return f"fee_statement:{statement.pk}", Download(statement.file, f"{number}.pdf", "application/pdf")


def _document_download(data: dict, user) -> tuple[str, Download]:
    if access.is_client(user):
        document = access.client_document(access.client_scope(user), data.get("d"))
    else:
        document = access.staff_document(user, data.get("d"))
    return f"document:{document.pk}", Download(document.file, document.filename, document.content_type)


def download_check(*, token: str, user, tenant, ip: str | None = None) -> Download:
    """The file behind ``token`` (a vault document or a fee statement) if ``user`` may download it
    now; audited either way.

    Refusals (``Http404``, same answer for every cause, so nothing leaks): a forged, tampered or
    expired token, another user's link, a firm mismatch, a document no longer shared or not theirs,
    a fee statement of another client or household or of a voided invoice."""
    actor = getattr(user, "email", "") or "anonymous"
    try:
        data = signing.loads(token, salt=DOWNLOAD_SALT, max_age=settings.CODEX_DOWNLOAD_LINK_MAX_AGE)
    except signing.SignatureExpired:
        reason = "expired link"
        data = None
    except signing.BadSignature:
        reason = "tampered or forged link"
        data = None
    else:
        reason = ""
    if data is not None:
        if data.get("s") != current_schema() or data.get("u") != getattr(user, "pk", None):
            reason = "link of another user or firm"
        else:
            try:
                target, download = (_fee_statement_download if "f" in data else _document_download)(data, user)
            except (Http404, PermissionDenied):
                reason = "document not accessible to this user"
            else:
                audit_record(action="portal.document_downloaded", actor=actor, tenant=tenant, target=target, ip=ip)
                return download
    audit_record(action="portal.download_refused", actor=actor, tenant=tenant, ip=ip, details={"reason": reason})
    raise Http404("This download link is not valid. Open the document again from the portal.")


# --- posts -----------------------------------------------------------------------------------------------
ALLOWED_TAGS = {
    "p",
    "br",
    "h2",
    "h3",
    "h4",
    "ul",
    "ol",
    "li",
    "strong",
    "em",
    "a",
    "blockquote",
    "code",
    "pre",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}


def markdown_render(text: str) -> str:
    """Markdown to HTML, sanitised by nh3 (an allow-list of tags; links get rel=noopener)."""
    html = markdown.markdown(text, extensions=["tables", "sane_lists"], output_format="html")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


@transaction.atomic
def post_save(
    *,
    actor: User,
    tenant,
    title: str,
    body: str,
    audience: str = PostAudience.ALL,
    audience_tag: str = "",
    publish: bool = False,
    post: Post | None = None,
) -> Post:
    """Create or edit a post (managers: it speaks for the firm). Publishing sets ``published_at`` once."""
    if not getattr(actor, "is_manager", False):
        raise PermissionDenied("Only owners and admins publish to clients.")
    errors = {}
    title = (title or "").strip()
    if not title:
        errors["title"] = "Give the post a title."
    if not (body or "").strip():
        errors["body"] = "Write the post."
    if audience not in PostAudience.values:
        errors["audience"] = f"Choose one of {', '.join(PostAudience.values)}."
    audience_tag = (audience_tag or "").strip()
    if audience == PostAudience.TAG and not audience_tag:
        errors["audience_tag"] = "Name the tag of the clients who see this post."
    if errors:
        raise ValidationError(errors)
    post = post or Post(created_by=actor)
    post.title, post.body_markdown, post.body_html = title[:200], body, markdown_render(body)
    post.audience, post.audience_tag = audience, audience_tag if audience == PostAudience.TAG else ""
    if publish and post.published_at is None:
        post.published_at = timezone.now()
    post.save()
    audit_record(
        action="portal.post_saved",
        actor=actor.email,
        tenant=tenant,
        target=f"post:{post.pk}",
        details={"published": post.published_at is not None},
    )
    return post


# --- quarterly reports -------------------------------------------------------------------------------------
def _announce(*, contact: Contact, tenant, document: Document) -> None:
    # the contact's users and the users of the households they belong to (they see the document too)
    readers = Q(contact=contact) | Q(household__client=contact) | Q(household__accounts__portfolio__client=contact)
    emails = sorted(
        set(ClientAccess.objects.filter(readers, user__is_active=True).values_list("user__email", flat=True))
    )
    if not emails:
        return
    link = links.firm_url(tenant.slug, "/portal/documents")
    transaction.on_commit(
        lambda: send_mail(
            f"Your report from {tenant.name}",
            f"A new document is in your client portal: {document.title}.\n\nOpen it: {link}",
            None,
            emails,
        )
    )


def report_generate(*, actor: User | None, tenant, contact: Contact, quarter_end) -> Document | None:
    """Draw the quarterly report of ``contact`` for the quarter ending ``quarter_end``, store it in the
    vault (shared with the client) and e-mail the client's portal users. None when the client had no
    portfolio with transactions by then. Atomic (one document, one e-mail on commit)."""
    if actor is not None:
        access.staff_contact(actor, contact.pk)
    settings_row = ReportSettings.objects.first()
    data = reports.report_data(
        contact=contact,
        quarter_end=quarter_end,
        firm_name=tenant.name,
        brand_color=getattr(tenant, "brand_color", "") or "",
        disclosures=settings_row.disclosures if settings_row else "",
    )
    if not data.portfolios:
        return None
    content = reports.report_pdf(data)
    with transaction.atomic():
        document = document_store(
            actor=actor,
            tenant=tenant,
            contact=contact,
            title=f"Quarterly report {quarter_end.isoformat()}",
            kind=DocumentKind.REPORT,
            visibility=Visibility.SHARED,
            filename=f"report-{quarter_end.isoformat()}.pdf",
            content_type="application/pdf",
            content=content,
            period_end=quarter_end,
        )
        _announce(contact=contact, tenant=tenant, document=document)
    return document


def report_run_start(*, actor: User, tenant, quarter_end) -> ReportRun:
    """Queue the reports of every client with a portfolio (owners and admins)."""
    if not getattr(actor, "is_manager", False):
        raise PermissionDenied("Only owners and admins run the firm's reports.")
    if quarter_end > timezone.localdate():
        raise ValidationError({"quarter_end": "The quarter has not ended yet."})
    with transaction.atomic():
        run = ReportRun.objects.create(quarter_end=quarter_end, requested_by=actor)
        transaction.on_commit(lambda: report_run.delay(run.pk))
    audit_record(
        action="portal.report_run",
        actor=actor.email,
        tenant=tenant,
        target=f"run:{run.pk}",
        details={"quarter_end": quarter_end.isoformat()},
    )
    return run


def report_run_execute(*, run_id: int, tenant) -> ReportRun:
    """Generate each client's report, counting progress on the run as it goes (each client in its
    own transaction: one client's failure is recorded and the others go on)."""
    run = ReportRun.objects.get(pk=run_id)
    contacts = list(
        Contact.objects.filter(portfolios__archived=False).exclude(lifecycle=Lifecycle.FORMER).distinct().order_by("pk")
    )
    ReportRun.objects.filter(pk=run.pk).update(status=ReportRun.Status.RUNNING, total=len(contacts))
    for contact in contacts:
        try:
            report_generate(actor=None, tenant=tenant, contact=contact, quarter_end=run.quarter_end)
        except (ValidationError, ValueError, ArithmeticError, OSError) as exc:
            run.refresh_from_db()
            run.failed += 1
            run.errors = [*run.errors, {"contact": contact.pk, "error": str(exc)[:200]}][-50:]
            run.save(update_fields=["failed", "errors"])
        else:
            ReportRun.objects.filter(pk=run.pk).update(done=models.F("done") + 1)
    with transaction.atomic():
        ReportRun.objects.filter(pk=run.pk).update(status=ReportRun.Status.DONE, finished_at=timezone.now())
        run.refresh_from_db()
        # Once per run (``source``): a retried task tells nobody twice.
        notification_send(
            recipients=[run.requested_by_id],
            kind=NotificationKind.REPORT,
            title=f"Reports for {run.quarter_end:%d %b %Y} are ready",
            body=f"{run.done} of {run.total} done" + (f", {run.failed} failed" if run.failed else ""),
            url="/client-portal/reports/",
            source=f"report-run:{run.pk}",
        )
    return run
