"""Trigram similarity of names in plain SQL, without pg_trgm (docs/decisions/0201-crm-search.md).

The embedded PostgreSQL ships no contrib extensions, so the pg_trgm semantics the CRM needs are
written as three IMMUTABLE SQL functions, created in every firm schema by migration 0008 (the
template schema's copy travels with the snapshot clone, ``tenants/cloning.py``):

- ``crm_trigrams(text) -> text[]``: the distinct trigrams of a name, as pg_trgm makes them: lower
  case (common accents folded first), split into words on spaces and punctuation, each word padded
  with two spaces in front and one behind ("john" -> "  j", " jo", "joh", "ohn", "hn ").
- ``crm_trigram_similarity(a text[], b text[]) -> real``: |A∩B| / |A∪B| of two such sets.
- ``crm_trigram_score(a text[], q text[]) -> real``: what search ranks typos by: the similarity, or
  half the share of the query's trigrams found in the name when that is higher (a word-similarity
  stand-in, so that one misspelt last name finds "first last").
- ``crm_trigram_probe(q text[], threshold real) -> text[]``: the query trigrams a row must share at
  least one of to possibly reach ``threshold`` (pigeonhole, below); the GIN ``&&`` filter.

The bodies call only pg_catalog functions and operators, so they behave the same whatever the
search path, in whichever schema they live.
"""

from __future__ import annotations

import math
import re
import time

from codex.db import current_schema

# Folded before lower(): with the C collation lower() changes ASCII letters only, so both cases of
# the accented letters are listed. Letters that fold to two (ß, æ, œ) are replaced first.
_ACCENTED = "ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿŠšŽžČčĆćŁłŃńŚśŹźŻżĘęĄąŘřŤťĎďŇňŮůĞğİıŞş"
_PLAIN = "AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyySsZzCcCcLlNnSsZzZzEeAaRrTtDdNnUuGgIiSs"
assert len(_ACCENTED) == len(_PLAIN)

FUNCTIONS_SQL = f"""
CREATE OR REPLACE FUNCTION crm_trigrams(name text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT coalesce(array_agg(DISTINCT substr(padded.w, g.i, 3)), '{{}}'::text[])
  FROM regexp_split_to_table(
         lower(translate(replace(replace(replace(replace(replace(replace(name,
           'ß', 'ss'), 'Æ', 'ae'), 'æ', 'ae'), 'Œ', 'oe'), 'œ', 'oe'), 'ẞ', 'ss'),
           '{_ACCENTED}', '{_PLAIN}')),
         '[[:space:][:punct:]]+') AS words(word)
  CROSS JOIN LATERAL (SELECT '  ' || words.word || ' ') AS padded(w)
  CROSS JOIN LATERAL generate_series(1, length(padded.w) - 2) AS g(i)
  WHERE words.word <> ''
$fn$;

CREATE OR REPLACE FUNCTION crm_trigram_similarity(a text[], b text[]) RETURNS real
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT CASE WHEN shared.n = 0 THEN 0::real
              ELSE shared.n::real / (cardinality(a) + cardinality(b) - shared.n) END
  FROM (SELECT count(*)::int AS n FROM unnest(a) AS x(t) WHERE x.t = ANY (b)) AS shared
$fn$;

-- The search score of a name A for a query Q: the similarity, or half the share of Q's trigrams
-- found in A when that is higher (one misspelt word of a longer name, "Schmitt" for "Katharina
-- Schmidt": similarity 0.24, share 0.63), like pg_trgm's word similarity. Always below 1 (text
-- matches score 1 and more). Above 0.25 it implies |A∩Q| >= 0.25 * |Q|, as the probe assumes.
CREATE OR REPLACE FUNCTION crm_trigram_score(a text[], q text[]) RETURNS real
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT CASE WHEN shared.n = 0 THEN 0::real
              ELSE greatest(shared.n::real / (cardinality(a) + cardinality(q) - shared.n),
                            shared.n::real / cardinality(q) / 2) END
  FROM (SELECT count(*)::int AS n FROM unnest(a) AS x(t) WHERE x.t = ANY (q)) AS shared
$fn$;

-- similarity >= t needs |A∩Q| >= t*|A∪Q| >= t*|Q| = m shared trigrams, so every row above the
-- threshold holds at least one of any |Q| - m + 1 query trigrams: leave out the m - 1 most common
-- ones (word starts "  x", then " xy": a few dozen values, each shared by thousands of names).
CREATE OR REPLACE FUNCTION crm_trigram_probe(q text[], threshold real) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT coalesce(array_agg(ranked.t), '{{}}'::text[])
  FROM (SELECT x.t, row_number() OVER (ORDER BY x.t LIKE '  %%' DESC, x.t LIKE ' %%' DESC, x.t) AS r
        FROM unnest(q) AS x(t)) AS ranked
  WHERE ranked.r >= ceil(threshold * cardinality(q) - 0.000001)
$fn$;
"""

# Migration 0009: the words of a name (split and folded exactly as crm_trigrams does), and the
# firm's vocabulary of them (crm_nameword, model crm.NameWord) filled by statement triggers, so a
# COPY of 50,000 rows adds its words in one INSERT. The trigger function names its table through
# TG_TABLE_SCHEMA: it works whatever the search path of the writer.
WORDS_SQL = f"""
CREATE OR REPLACE FUNCTION crm_name_words(name text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT coalesce(array_agg(DISTINCT words.word ORDER BY words.word), '{{}}'::text[])
  FROM regexp_split_to_table(
         lower(translate(replace(replace(replace(replace(replace(replace(name,
           'ß', 'ss'), 'Æ', 'ae'), 'æ', 'ae'), 'Œ', 'oe'), 'œ', 'oe'), 'ẞ', 'ss'),
           '{_ACCENTED}', '{_PLAIN}')),
         '[[:space:][:punct:]]+') AS words(word)
  WHERE words.word <> ''
$fn$;

CREATE OR REPLACE FUNCTION crm_name_words_collect() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  -- sorted, so that concurrent writers take the vocabulary's index entries in the same order
  EXECUTE format(
    'INSERT INTO %I.crm_nameword (word) SELECT DISTINCT w.word FROM new_rows, unnest(new_rows.name_words) AS w(word)'
    ' ORDER BY w.word ON CONFLICT DO NOTHING', TG_TABLE_SCHEMA);
  RETURN NULL;
END
$fn$;
"""

WORD_TABLES = ("crm_contact", "crm_company", "crm_deal")

TRIGGERS_SQL = "".join(
    f"""
CREATE TRIGGER {table}_words_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION crm_name_words_collect();
CREATE TRIGGER {table}_words_update AFTER UPDATE ON {table} REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION crm_name_words_collect();
INSERT INTO crm_nameword (word) SELECT DISTINCT w.word FROM {table}, unnest({table}.name_words) AS w(word)
  ON CONFLICT DO NOTHING;
"""
    for table in WORD_TABLES
)

DROP_TRIGGERS_SQL = "".join(
    f"DROP TRIGGER IF EXISTS {table}_words_insert ON {table}; DROP TRIGGER IF EXISTS {table}_words_update ON {table};\n"
    for table in WORD_TABLES
)

DROP_WORDS_SQL = """
DROP FUNCTION IF EXISTS crm_name_words_collect();
DROP FUNCTION IF EXISTS crm_name_words(text);
"""

DROP_SQL = """
DROP FUNCTION IF EXISTS crm_trigram_probe(text[], real);
DROP FUNCTION IF EXISTS crm_trigram_score(text[], text[]);
DROP FUNCTION IF EXISTS crm_trigram_similarity(text[], text[]);
DROP FUNCTION IF EXISTS crm_trigrams(text);
"""


_FOLD = str.maketrans(_ACCENTED, _PLAIN)
_SPELL = (("ß", "ss"), ("Æ", "ae"), ("æ", "ae"), ("Œ", "oe"), ("œ", "oe"), ("ẞ", "ss"))
_SEPARATORS = re.compile(r"[\W_]+")


def trigrams(text: str) -> list[str]:
    """``crm_trigrams`` in Python, for the query side: the search builds its similarity expression
    from the query's trigrams as constants (``'smi' = ANY(name_trigrams)``, a few comparisons per
    row) instead of calling the SQL function for every candidate row (about 10 µs each, measured).
    Kept equal to the SQL function by tests/crm/test_search.py."""
    for accented, plain in _SPELL:
        text = text.replace(accented, plain)
    found: set[str] = set()
    for word in _SEPARATORS.split(text.translate(_FOLD).lower()):
        if word:
            padded = f"  {word} "
            found.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return sorted(found)


def words(text: str) -> list[str]:
    """``crm_name_words`` in Python: the distinct words of ``text`` as the trigrams see them."""
    for accented, plain in _SPELL:
        text = text.replace(accented, plain)
    return sorted({word for word in _SEPARATORS.split(text.translate(_FOLD).lower()) if word})


def probe(query_trigrams: list[str], threshold: float, frequencies: dict[str, float] | None = None) -> list[str]:
    """``crm_trigram_probe`` in Python: the query trigrams a row above ``threshold`` must share one
    of. With ``frequencies`` (share of rows holding a trigram, from the table's statistics) the most
    common ones are left out first: inside words too, "ann" or "man" can be in a third of a firm."""
    freq = frequencies or {}
    ranked = sorted(query_trigrams, key=lambda t: (-freq.get(t, 0.0), not t.startswith("  "), not t.startswith(" "), t))
    must_share = math.ceil(threshold * len(ranked) - 0.000001)
    return ranked[max(must_share - 1, 0) :]


_STATS_SECONDS = 600.0
_stats: dict[tuple[str, str], tuple[float, dict[str, float]]] = {}


def frequencies(connection, table: str) -> dict[str, float]:
    """Share of rows holding each common trigram of ``table.name_trigrams`` in the current schema
    (``crm_nameword`` too: share of the vocabulary's words),
    from PostgreSQL's statistics (``pg_stats.most_common_elems``, kept by ANALYZE/autovacuum).
    Cached per schema and table for ten minutes: one small query now and then, not per search."""
    key = (current_schema(), table)
    now = time.monotonic()
    cached = _stats.get(key)
    if cached is None or now - cached[0] > _STATS_SECONDS:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats"
                " WHERE schemaname = %s AND tablename = %s AND attname = 'name_trigrams'",
                [current_schema(), table],
            )
            row = cursor.fetchone()
        found = dict(zip(row[0], row[1], strict=False)) if row and row[0] else {}
        _stats[key] = cached = (now, found)
    return cached[1]
