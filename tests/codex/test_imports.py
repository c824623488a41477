"""The generic CSV import engine (codex.imports), with an in-memory spec."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from codex import imports as engine


def upload(text: str | bytes, name="people.csv", content_type="text/csv"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type=content_type)


class MemoryStore:
    def __init__(self, existing=None):
        self.rows = {k: dict(v) for k, v in (existing or {}).items()}
        self.created = []

    def spec(self):
        def parse_amount(v):
            return engine.parse_decimal(v)

        def validate(values):
            if values.get("amount") is not None and values["amount"] < 0:
                return {"amount": "Must not be negative."}
            return {}

        def create(rows):
            self.created.extend(rows)
            return len(rows)

        def update(existing, values):
            existing.update(values)

        def merge(existing, values):
            for k, v in values.items():
                if not existing.get(k):
                    existing[k] = v

        return engine.ImportSpec(
            kind="people",
            key_field="email",
            fields=[
                engine.ImportField("name", "Name", required=True, aliases=("full name",)),
                engine.ImportField("email", "E-mail", parse=engine.parse_email, aliases=("mail",)),
                engine.ImportField("amount", "Amount", parse=parse_amount),
                engine.ImportField("city", "City"),
            ],
            find_existing=lambda keys: {k: self.rows[k] for k in keys if k in self.rows},
            create=create,
            update=update,
            merge=merge,
            validate=validate,
        )


# --- reading ---------------------------------------------------------------------------------------


def test_reads_utf8_with_bom_and_sniffs_semicolons():
    parsed = engine.read_csv(upload("\ufeffName;Mail\nZoë;z@example.com\n"))
    assert parsed.encoding == "utf-8-sig" and parsed.delimiter == ";"
    assert parsed.headers == ["Name", "Mail"] and parsed.rows == [["Zoë", "z@example.com"]]


def test_reads_plain_utf8_and_falls_back_to_windows_1252():
    assert engine.read_csv(upload("Name\nJosé\n")).encoding == "utf-8"
    parsed = engine.read_csv(upload("Name\nJos\xe9\n".encode("cp1252")))
    assert parsed.encoding == "windows-1252" and parsed.rows == [["José"]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "a,b\n1,2", "name": "people.xlsx"}, "Upload a .csv file."),
        ({"text": "a,b\n1,2", "content_type": "image/png"}, "not image/png"),
        ({"text": b"PK\x03\x04\x00\x00binary"}, "binary"),
        ({"text": ""}, "empty"),
        ({"text": "Name,name\n1,2\n"}, "same name"),
    ],
)
def test_unreadable_files_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(engine.ImportFileError, match=message):
        engine.read_csv(upload(**kwargs))


def test_size_limit():
    with pytest.raises(engine.ImportFileError, match="larger than 1 MB"):
        engine.read_csv(upload("a\n" + "x" * (1024 * 1024 + 10)), max_bytes=1024 * 1024)


def test_row_limit():
    with pytest.raises(engine.ImportFileError, match="more than 2 rows"):
        engine.read_csv(upload("a\n1\n2\n3\n"), max_rows=2)


def test_blank_lines_are_ignored():
    assert engine.read_csv(upload("a,b\n1,2\n,\n\n3,4\n")).rows == [["1", "2"], ["3", "4"]]


# --- mapping ---------------------------------------------------------------------------------------


def test_auto_map_by_name_label_and_alias_each_field_once():
    spec = MemoryStore().spec()
    mapping = engine.auto_map(["Full Name", "E-Mail", "mail", "Notes"], spec)
    assert mapping == {"Full Name": "name", "E-Mail": "email", "mail": "", "Notes": ""}


def test_validate_mapping_reports_missing_required_and_double_use():
    spec = MemoryStore().spec()
    errors = engine.validate_mapping(["a", "b"], {"a": "email", "b": "email"}, spec)
    assert "b" in errors and "Name" in errors["__all__"]
    assert engine.validate_mapping(["a"], {"a": "name"}, spec) == {}
    assert "nope" in engine.validate_mapping(["a"], {"a": "nope"}, spec)["a"]


# --- preview and commit ----------------------------------------------------------------------------

HEADERS = ["Name", "Email", "Amount", "City"]
MAPPING = {"Name": "name", "Email": "email", "Amount": "amount", "City": "city"}


def test_preview_reports_errors_with_row_number_and_field(db):
    store = MemoryStore()
    rows = [
        ["Ann", "ann@example.com", "10", "Bern"],
        ["", "bob@example.com", "x", ""],
        ["Cid", "not-an-email", "-5", ""],
        ["Dee", "ANN@example.com", "1", ""],
    ]
    p = engine.preview(store.spec(), HEADERS, rows, MAPPING, duplicates="skip")
    found = {(e.row, e.field) for e in p.errors}
    assert found == {(3, "name"), (3, "amount"), (4, "email"), (5, "email")}
    assert any("Duplicate of row 2" in e.message for e in p.errors)
    assert p.counts == {"create": 1, "update": 0, "merge": 0, "skip": 0, "error": 3}
    assert not p.ok


@pytest.mark.parametrize(
    ("mode", "expected_city", "report"),
    [
        ("skip", "", {"created": 1, "updated": 0, "merged": 0, "skipped": 1}),
        ("update", "Basel", {"created": 1, "updated": 1, "merged": 0, "skipped": 0}),
        ("merge", "Basel", {"created": 1, "updated": 0, "merged": 1, "skipped": 0}),
    ],
)
def test_commit_handles_duplicates_by_mode(db, mode, expected_city, report):
    store = MemoryStore({"old@example.com": {"name": "Old", "city": ""}})
    rows = [["Old Name", "OLD@example.com", "", "Basel"], ["New", "new@example.com", "2.50", ""]]
    result = engine.commit(store.spec(), HEADERS, rows, MAPPING, duplicates=mode)
    assert {k: v for k, v in result.as_dict().items() if k != "errors"} == report
    assert store.rows["old@example.com"]["city"] == expected_city
    assert store.created == [{"name": "New", "email": "new@example.com", "amount": Decimal("2.50")}]
    if mode == "merge":
        assert store.rows["old@example.com"]["name"] == "Old"  # merge fills blanks only
    if mode == "update":
        assert store.rows["old@example.com"]["name"] == "Old Name"


def test_commit_writes_nothing_when_any_row_is_bad(db):
    store = MemoryStore()
    rows = [["Ann", "ann@example.com", "", ""], ["Bob", "bad", "", ""]]
    with pytest.raises(engine.ImportRejected) as err:
        engine.commit(store.spec(), HEADERS, rows, MAPPING, duplicates="skip")
    assert [(e.row, e.field) for e in err.value.errors] == [(3, "email")]
    assert store.created == []


def test_commit_rolls_back_database_writes_when_before_write_fails(firm):
    from crm.models import PipelineStage

    store = MemoryStore()

    def before_write(preview):
        PipelineStage.objects.create(name="Written then undone")
        raise ValidationError("limit")

    with pytest.raises(ValidationError):
        engine.commit(
            store.spec(), HEADERS, [["Ann", "", "", ""]], MAPPING, duplicates="skip", before_write=before_write
        )
    assert not PipelineStage.objects.filter(name="Written then undone").exists()


def test_unknown_duplicates_mode_is_a_programming_error():
    with pytest.raises(ValueError):
        engine.preview(MemoryStore().spec(), HEADERS, [], MAPPING, duplicates="replace")


def test_parsers():
    assert engine.parse_decimal("1,234.50") == Decimal("1234.50")
    assert str(engine.parse_date("31/12/2025")) == "2025-12-31"
    assert engine.parse_list("a; b,c | d") == ["a", "b", "c", "d"]
    assert engine.parse_choice([("lead", "Lead"), ("client", "Client")])("CLIENT") == "client"
    with pytest.raises(ValidationError):
        engine.parse_date("tomorrow")
    with pytest.raises(ValidationError):
        engine.parse_max_length(3)("abcd")


def test_write_csv_defuses_formulas():
    out = "".join(engine.write_csv([["=SUM(A1)", "ok", None]], ["a", "b", "c"]))
    assert out.splitlines() == ["a,b,c", "'=SUM(A1),ok,"]
    assert io.StringIO(out).readline().strip() == "a,b,c"
