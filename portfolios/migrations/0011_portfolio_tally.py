from django.db import migrations, models

# The firm's number of portfolios, kept by the database (PortfolioTally, docs/decisions/1320): one
# statement-level trigger per insert, delete and truncate of portfolios_portfolio, in the firm's own
# schema (functions and triggers are cloned with the template schema like the rest of it).
TALLY_SQL = """
CREATE FUNCTION portfolio_tally_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO portfolios_portfoliotally (id, portfolios) SELECT 1, count(*) FROM added
    ON CONFLICT (id) DO UPDATE SET portfolios = portfolios_portfoliotally.portfolios + EXCLUDED.portfolios;
    RETURN NULL;
END $$;
CREATE FUNCTION portfolio_tally_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE portfolios_portfoliotally SET portfolios = portfolios - (SELECT count(*) FROM removed) WHERE id = 1;
    RETURN NULL;
END $$;
CREATE FUNCTION portfolio_tally_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM portfolios_portfoliotally;
    RETURN NULL;
END $$;
CREATE TRIGGER portfolio_tally_insert AFTER INSERT ON portfolios_portfolio
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION portfolio_tally_added();
CREATE TRIGGER portfolio_tally_delete AFTER DELETE ON portfolios_portfolio
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION portfolio_tally_removed();
CREATE TRIGGER portfolio_tally_truncate AFTER TRUNCATE ON portfolios_portfolio
    FOR EACH STATEMENT EXECUTE FUNCTION portfolio_tally_emptied();
-- the portfolios already there, counted once; the triggers keep the count from here on
INSERT INTO portfolios_portfoliotally (id, portfolios) SELECT 1, count(*) FROM portfolios_portfolio;
"""

UNDO_SQL = """
DROP TRIGGER portfolio_tally_insert ON portfolios_portfolio;
DROP TRIGGER portfolio_tally_delete ON portfolios_portfolio;
DROP TRIGGER portfolio_tally_truncate ON portfolios_portfolio;
DROP FUNCTION portfolio_tally_added();
DROP FUNCTION portfolio_tally_removed();
DROP FUNCTION portfolio_tally_emptied();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("portfolios", "0010_import_heartbeat"),
    ]

    operations = [
        migrations.CreateModel(
            name="PortfolioTally",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("portfolios", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("id", 1)), name="portfolio_tally_one_row"),
                    models.CheckConstraint(
                        condition=models.Q(("portfolios__gte", 0)), name="portfolio_tally_not_negative"
                    ),
                ],
            },
        ),
        migrations.RunSQL(TALLY_SQL, reverse_sql=UNDO_SQL),
    ]
