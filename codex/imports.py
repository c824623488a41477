"""A generic CSV import engine: read, map columns, preview with per-row errors, commit all or nothing.

Used by the CRM (contacts, companies, deals) and by portfolios (transactions). An app describes its
import with an ``ImportSpec`` (fields, how to parse each value, the duplicate key, how to find,
create, update and merge records); the engine does the rest:

1. ``read_csv(upload)``: size limit, type check (extension, content type, no binary), encoding
   detection (UTF-8 with or without BOM; Windows-1252 as the fallback spreadsheets produce),
   delimiter sniffing (comma, semicolon, tab). Raises ``ImportFileError`` with a clear message.
2. ``auto_map(headers, spec)``: header -> field by normalised name and aliases; the user corrects it.
3. ``preview(spec, rows, mapping, duplicates=...)``: every row parsed and validated, errors with row
   number (as in the file, header = row 1) and field; duplicates (on the key, in the file or in the
   database) flagged with the action that will be taken (create/update/merge/skip).
4. ``commit(...)``: re-validates against the database as it is now, and inside one transaction
   writes everything, or nothing if any row has an error (``ImportRejected``). Returns a report.

Nothing here knows about models: the spec's callables do the writing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_ROWS = 100_000
ALLOWED_CONTENT_TYPES = {
    "text/csv",
    "text/plain",
    "application/csv",
    "application/vnd.ms-excel",  # what browsers on Windows send for .csv
    "application/octet-stream",
    "",
}
IGNORE = ""  # mapping target meaning "do not import this column"


class DuplicateMode:
    SKIP = "skip"  # keep the existing record, ignore the row
    UPDATE = "update"  # overwrite the existing record's fields with the row's non-empty values
    MERGE = "merge"  # fill only the existing record's empty fields (and union list fields)
    choices = [(SKIP, "Skip duplicates"), (UPDATE, "Update existing records"), (MERGE, "Merge into existing records")]
    values = {SKIP, UPDATE, MERGE}


class ImportFileError(Exception):
    """The file cannot be read as a CSV (too big, wrong type, undecodable, empty)."""


class ImportRejected(Exception):
    """Commit refused: some rows have errors; nothing was written."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} row error(s); nothing was imported.")
        self.errors = errors


@dataclass(frozen=True)
class ImportField:
    name: str
    label: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    # str -> value; raise ValidationError with a message for a bad value. Empty strings are passed.
    parse: Callable[[str], Any] | None = None
    is_list: bool = False  # merged as a union in MERGE mode


@dataclass
class ImportSpec:
    """How one kind of record is imported. ``find_existing(keys)`` returns {key: record};
    ``create(values_list)`` bulk-creates; ``update(record, values)`` and ``merge(record, values)``
    change one. ``validate(values)`` may return {field: message} for cross-field rules."""

    kind: str
    fields: list[ImportField]
    create: Callable[[list[dict]], int]
    key_field: str | None = None
    find_existing: Callable[[Iterable[str]], dict[str, Any]] | None = None
    update: Callable[[Any, dict], None] | None = None
    merge: Callable[[Any, dict], None] | None = None
    validate: Callable[[dict], dict[str, str]] | None = None
    normalise_key: Callable[[str], str] = lambda v: v.strip().lower()  # noqa: E731

    def field(self, name: str) -> ImportField:
        return next(f for f in self.fields if f.name == name)


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str


@dataclass
class PreviewRow:
    row: int
    values: dict
    action: str  # create, update, merge, skip, error
    errors: list[RowError] = field(default_factory=list)


@dataclass
class Preview:
    rows: list[PreviewRow]
    errors: list[RowError]
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.errors

    def errors_by_field(self) -> list[tuple[str, int]]:
        """``[(field, rows with an error on it)]``, most first: the summary of every error when a
        page lists only the first ones (the check itself always runs over every row)."""
        counts: dict[str, set[int]] = {}
        for e in self.errors:
            counts.setdefault(e.field, set()).add(e.row)
        return sorted(((f, len(rows)) for f, rows in counts.items()), key=lambda fc: (-fc[1], fc[0]))


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    merged: int = 0
    skipped: int = 0
    errors: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ParsedFile:
    headers: list[str]
    rows: list[list[str]]
    encoding: str
    delimiter: str


# --- reading ----------------------------------------------------------------------------------------


def _decode(raw: bytes) -> tuple[str, str]:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError as exc:
        raise ImportFileError("The file is not text in UTF-8 or Windows-1252. Save it as “CSV UTF-8”.") from exc


def read_csv(upload, *, max_bytes: int = DEFAULT_MAX_BYTES, max_rows: int = DEFAULT_MAX_ROWS) -> ParsedFile:
    """Read an uploaded file (Django ``UploadedFile`` or any object with ``read()``, ``name``)."""
    name = getattr(upload, "name", "") or ""
    if not name.lower().endswith((".csv", ".txt")):
        raise ImportFileError("Upload a .csv file.")
    content_type = (getattr(upload, "content_type", "") or "").split(";")[0].strip().lower()
    if content_type not in ALLOWED_CONTENT_TYPES:
        raise ImportFileError(f"Upload a CSV file, not {content_type}.")
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise ImportFileError(f"The file is larger than {max_bytes // (1024 * 1024)} MB.")
    raw = upload.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ImportFileError(f"The file is larger than {max_bytes // (1024 * 1024)} MB.")
    if b"\x00" in raw[:4096]:
        raise ImportFileError("This looks like a binary file (a spreadsheet?). Export it as CSV first.")
    text, encoding = _decode(raw)
    if not text.strip():
        raise ImportFileError("The file is empty.")
    sample = text[:8192]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        headers = [h.strip() for h in next(reader)]
        rows = []
        for i, row in enumerate(reader):
            if i >= max_rows:
                raise ImportFileError(f"The file has more than {max_rows:,} rows; split it.")
            if any(cell.strip() for cell in row):
                rows.append(row)
    except csv.Error as exc:
        raise ImportFileError(f"The file is not a valid CSV: {exc}.") from exc
    if not any(headers):
        raise ImportFileError("The first row must name the columns.")
    if len(set(h.lower() for h in headers if h)) != len([h for h in headers if h]):
        raise ImportFileError("Two columns have the same name; rename one.")
    return ParsedFile(headers=headers, rows=rows, encoding=encoding, delimiter=delimiter)


# --- mapping ----------------------------------------------------------------------------------------


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def auto_map(headers: list[str], spec: ImportSpec) -> dict[str, str]:
    """{header: field name or ""} by normalised name, label or alias; each field used at most once."""
    lookup: dict[str, str] = {}
    for f in spec.fields:
        for candidate in (f.name, f.label, *f.aliases):
            lookup.setdefault(_norm(candidate), f.name)
    mapping, used = {}, set()
    for h in headers:
        target = lookup.get(_norm(h), IGNORE)
        if target and target in used:
            target = IGNORE
        mapping[h] = target
        if target:
            used.add(target)
    return mapping


def validate_mapping(headers: list[str], mapping: dict[str, str], spec: ImportSpec) -> dict[str, str]:
    """Field errors of a mapping: unknown columns or fields, a field mapped twice, a required field
    not mapped. Returns {} when it is usable."""
    names = {f.name for f in spec.fields}
    errors: dict[str, str] = {}
    seen: dict[str, str] = {}
    for header, target in mapping.items():
        if header not in headers:
            errors[header] = "There is no such column in the file."
        elif target and target not in names:
            errors[header] = f"Unknown field “{target}”."
        elif target and target in seen:
            errors[header] = f"“{spec.field(target).label}” is already taken by column “{seen[target]}”."
        elif target:
            seen[target] = header
    for f in spec.fields:
        if f.required and f.name not in seen:
            errors.setdefault("__all__", "")
            errors["__all__"] = (errors["__all__"] + f" Map a column to “{f.label}” (required).").strip()
    return errors


# --- preview and commit -----------------------------------------------------------------------------


def _parse_rows(
    spec: ImportSpec, headers: list[str], rows: list[list[str]], mapping: dict[str, str]
) -> list[PreviewRow]:
    by_name = {f.name: f for f in spec.fields}
    # (field, column, parser, required, label) read once: this loop runs once per cell
    columns = [
        (target, headers.index(h), by_name[target].parse, by_name[target].required, by_name[target].label)
        for h, target in mapping.items()
        if target and h in headers
    ]
    validate = spec.validate
    out = []
    for offset, raw in enumerate(rows):
        number = offset + 2  # the header is row 1
        values, errors = {}, []
        width = len(raw)
        for name, col, parse, required, label in columns:
            cell = raw[col].strip() if col < width else ""
            if not cell:
                if required:
                    errors.append(RowError(number, name, f"{label} is required."))
                continue
            try:
                values[name] = parse(cell) if parse else cell
            except ValidationError as exc:
                errors.append(RowError(number, name, " ".join(exc.messages)))
        if not errors and validate is not None:
            for name, message in (validate(values) or {}).items():
                errors.append(RowError(number, name, message))
        out.append(PreviewRow(row=number, values=values, action="error" if errors else "create", errors=errors))
    return out


def preview(
    spec: ImportSpec, headers: list[str], rows: list[list[str]], mapping: dict[str, str], *, duplicates: str
) -> Preview:
    """Validate every row and decide what will happen to it. Reads the database (one query per
    1,000 keys to find existing records) and writes nothing."""
    if duplicates not in DuplicateMode.values:
        raise ValueError(f"unknown duplicates mode {duplicates!r}")
    parsed = _parse_rows(spec, headers, rows, mapping)
    if spec.key_field and spec.find_existing:
        first_seen: dict[str, int] = {}
        keys = []
        for r in parsed:
            key = r.values.get(spec.key_field)
            if not key or r.errors:
                continue
            key = spec.normalise_key(key)
            if key in first_seen:
                r.errors.append(RowError(r.row, spec.key_field, f"Duplicate of row {first_seen[key]} in this file."))
                r.action = "error"
                continue
            first_seen[key] = r.row
            keys.append(key)
        existing = {}
        for i in range(0, len(keys), 1000):
            existing.update(spec.find_existing(keys[i : i + 1000]))
        for r in parsed:
            key = r.values.get(spec.key_field)
            if r.errors or not key or spec.normalise_key(key) not in existing:
                continue
            r.action = {"skip": "skip", "update": "update", "merge": "merge"}[duplicates]
            r.values["__existing__"] = existing[spec.normalise_key(key)]
    errors = [e for r in parsed for e in r.errors]
    counts = {a: 0 for a in ("create", "update", "merge", "skip", "error")}
    for r in parsed:
        counts[r.action] += 1
    return Preview(rows=parsed, errors=errors, counts=counts)


def commit(
    spec: ImportSpec,
    headers: list[str],
    rows: list[list[str]],
    mapping: dict[str, str],
    *,
    duplicates: str,
    before_write: Callable[[Preview], None] | None = None,
) -> ImportReport:
    """Import all rows or none: re-runs the preview against the current database, refuses with
    ``ImportRejected`` if any row has an error, else writes everything in one transaction.
    ``before_write(preview)`` runs inside the transaction first (plan limits, locks)."""
    with transaction.atomic():
        result = preview(spec, headers, rows, mapping, duplicates=duplicates)
        if result.errors:
            raise ImportRejected(result.errors)
        if before_write:
            before_write(result)
        report = ImportReport()
        to_create = []
        for r in result.rows:
            existing = r.values.pop("__existing__", None)
            if r.action == "create":
                to_create.append(r.values)
            elif r.action == "skip":
                report.skipped += 1
            elif r.action == "update":
                if spec.update is None:
                    raise TypeError(f"the {spec.kind} import has no update step")
                spec.update(existing, r.values)
                report.updated += 1
            elif r.action == "merge":
                if spec.merge is None:
                    raise TypeError(f"the {spec.kind} import has no merge step")
                spec.merge(existing, r.values)
                report.merged += 1
        if to_create:
            report.created = spec.create(to_create)
    return report


# --- common parsers ---------------------------------------------------------------------------------


def parse_email(value: str) -> str:

    value = value.strip().lower()
    try:
        validate_email(value)
    except ValidationError as exc:
        raise ValidationError(f"“{value}” is not a valid e-mail address.") from exc
    return value


def parse_choice(choices) -> Callable[[str], str]:
    by_value = {str(v).lower(): v for v, _ in choices}
    by_label = {str(label).lower(): v for v, label in choices}

    def parse(value: str) -> str:
        key = value.strip().lower()
        if key in by_value:
            return by_value[key]
        if key in by_label:
            return by_label[key]
        raise ValidationError(f"“{value}” is not one of: {', '.join(str(v) for v, _ in choices)}.")

    return parse


def parse_list(value: str) -> list[str]:
    return [p.strip() for p in re.split(r"[;,|]", value) if p.strip()]


def parse_max_length(n: int) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if len(value) > n:
            raise ValidationError(f"At most {n} characters (this has {len(value)}).")
        return value

    return parse


def parse_decimal(value: str):

    cleaned = value.replace(",", "").replace(" ", "")
    try:
        return Decimal(cleaned)
    except InvalidOperation as exc:
        raise ValidationError(f"“{value}” is not a number.") from exc


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(value: str):

    value = value.strip()
    if _ISO_DATE.fullmatch(value):
        # the common case, read by C (``strptime`` costs 5 us a cell: 25 ms of a 5,000-row preview)
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass  # 2024-02-30: the formats below refuse it too, with the message
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    raise ValidationError(f"“{value}” is not a date (use YYYY-MM-DD).")


def write_csv(rows: Iterable[Iterable[Any]], headers: list[str]) -> Iterable[str]:
    """Yield CSV lines (for a StreamingHttpResponse); formula-like cells are defused."""

    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())
    yield writer.writerow(headers)
    for row in rows:
        yield writer.writerow([_defuse(v) for v in row])


def _defuse(value: Any) -> Any:
    # CSV injection: a cell starting with = + - @ is run as a formula by spreadsheets.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
