"""One check for every upload: size, extension, declared type and content sniffing.

Use it in forms (``validators=[UploadValidator(kind="csv")]``) or serializers, or call
``validate_upload(file, kind="csv")`` in a service before reading a file. ``codex.imports.read_csv``
applies the same rules to CSV imports. Django already caps request bodies
(``DATA_UPLOAD_MAX_MEMORY_SIZE``) and spools files above ``FILE_UPLOAD_MAX_MEMORY_SIZE`` to disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible


@dataclass(frozen=True)
class UploadKind:
    extensions: tuple[str, ...]
    content_types: frozenset[str]
    text: bool  # True: refuse NUL bytes (a binary file renamed to .csv)
    magic: tuple[bytes, ...] = ()  # accepted leading bytes for binary kinds


KINDS = {
    "csv": UploadKind(
        (".csv", ".txt"),
        frozenset(
            {"text/csv", "text/plain", "application/csv", "application/vnd.ms-excel", "application/octet-stream", ""}
        ),
        text=True,
    ),
    "json": UploadKind((".json",), frozenset({"application/json", "text/plain", "application/octet-stream", ""}), True),
    "pdf": UploadKind((".pdf",), frozenset({"application/pdf", "application/octet-stream", ""}), False, (b"%PDF-",)),
    "png": UploadKind(
        (".png",), frozenset({"image/png", "application/octet-stream", ""}), False, (b"\x89PNG\r\n\x1a\n",)
    ),
}


def validate_upload(upload, *, kind: str = "csv", max_bytes: int | None = None) -> None:
    """Raise ValidationError (code ``upload_*``) unless ``upload`` is an acceptable ``kind`` file.

    Reads at most the first 4 KiB and rewinds the file.
    """
    spec = KINDS[kind]
    max_bytes = max_bytes or settings.CODEX_UPLOAD_MAX_BYTES
    name = (getattr(upload, "name", "") or "").lower()
    if not name.endswith(spec.extensions):
        raise ValidationError(
            f"Upload a {' or '.join(spec.extensions)} file.", code="upload_extension", params={"name": name}
        )
    content_type = (getattr(upload, "content_type", "") or "").split(";")[0].strip().lower()
    if content_type not in spec.content_types:
        raise ValidationError(f"A {kind.upper()} file was expected, not {content_type}.", code="upload_type")
    size = getattr(upload, "size", None)
    if size is None or size > max_bytes:
        raise ValidationError(f"The file must be at most {max_bytes // (1024 * 1024)} MB.", code="upload_size")
    if size == 0:
        raise ValidationError("The file is empty.", code="upload_empty")
    head = upload.read(4096)
    if hasattr(upload, "seek"):
        upload.seek(0)
    if spec.text and b"\x00" in head:
        raise ValidationError("This is a binary file, not text.", code="upload_binary")
    if spec.magic and not head.startswith(spec.magic):
        raise ValidationError(f"The file's content is not {kind.upper()}.", code="upload_content")


@deconstructible
class UploadValidator:
    """Field validator form of ``validate_upload``."""

    def __init__(self, kind: str = "csv", max_bytes: int | None = None):
        self.kind = kind
        self.max_bytes = max_bytes

    def __call__(self, upload):
        validate_upload(upload, kind=self.kind, max_bytes=self.max_bytes)

    def __eq__(self, other):
        return isinstance(other, UploadValidator) and (self.kind, self.max_bytes) == (other.kind, other.max_bytes)
