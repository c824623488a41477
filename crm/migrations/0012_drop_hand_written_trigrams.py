"""CRM search on pg_trgm, step 2 of 2 (contract): the hand-written trigram machinery goes. Drops
the statement triggers that filled the word vocabulary, the vocabulary (``crm_nameword``), the
stored trigram and word arrays with their indexes, and the SQL functions of migrations 0008 and
0009. Search reads ``search_name`` (0011) since this release."""

from django.db import migrations

WORD_TABLES = ("crm_contact", "crm_company", "crm_deal")
DROP_TRIGGERS_SQL = "".join(
    f"DROP TRIGGER IF EXISTS {table}_words_insert ON {table}; DROP TRIGGER IF EXISTS {table}_words_update ON {table};\n"
    for table in WORD_TABLES
)
DROP_FUNCTIONS_SQL = """
DROP FUNCTION IF EXISTS crm_name_words_collect();
DROP FUNCTION IF EXISTS crm_name_words(text);
DROP FUNCTION IF EXISTS crm_trigram_probe(text[], real);
DROP FUNCTION IF EXISTS crm_trigram_score(text[], text[]);
DROP FUNCTION IF EXISTS crm_trigram_similarity(text[], text[]);
DROP FUNCTION IF EXISTS crm_trigrams(text);
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0011_pg_trgm_search")]

    operations = [
        # Forwards only: the functions and triggers are not re-created (0008/0009 hold them).
        migrations.RunSQL(DROP_TRIGGERS_SQL, migrations.RunSQL.noop),
        migrations.RemoveIndex(
            model_name='nameword',
            name='crm_nameword_trigrams',
        ),
        migrations.DeleteModel(
            name='NameWord',
        ),
        migrations.RemoveIndex(
            model_name='company',
            name='crm_company_name_words',
        ),
        migrations.RemoveIndex(
            model_name='contact',
            name='crm_contact_name_words',
        ),
        migrations.RemoveIndex(
            model_name='deal',
            name='crm_deal_title_words',
        ),
        migrations.RemoveField(
            model_name='company',
            name='name_trigrams',
        ),
        migrations.RemoveField(
            model_name='company',
            name='name_words',
        ),
        migrations.RemoveField(
            model_name='contact',
            name='name_trigrams',
        ),
        migrations.RemoveField(
            model_name='contact',
            name='name_words',
        ),
        migrations.RemoveField(
            model_name='deal',
            name='name_trigrams',
        ),
        migrations.RemoveField(
            model_name='deal',
            name='name_words',
        ),
        migrations.RunSQL(DROP_FUNCTIONS_SQL, migrations.RunSQL.noop),
    ]
