"""``manage.py fetch_market_data [--fx] [--prices] [--since YYYY-MM-DD] [--overwrite] [--provider NAME]``.

What beat runs after each close, by hand: fills every gap back to the last stored date, reports
per instrument, never replaces a stored (e.g. manually corrected) value without ``--overwrite``."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from portfolios.market.feeds import runs
from portfolios.market.models import FeedRunStatus


class Command(BaseCommand):
    help = "Fetch FX reference rates and end-of-day closes from the configured providers."

    def add_arguments(self, parser):
        parser.add_argument("--fx", action="store_true", help="Only FX rates (ECB).")
        parser.add_argument("--prices", action="store_true", help="Only closes.")
        parser.add_argument("--provider", action="append", help="Price provider(s) to use, in order.")
        parser.add_argument("--since", type=date.fromisoformat, help="Fetch from this date, not from the gap.")
        parser.add_argument("--overwrite", action="store_true", help="Replace stored values that differ (audited).")

    def handle(self, *args, fx, prices, provider, since, overwrite, **options):
        both = not fx and not prices
        failed = False
        try:
            chosen = runs.price_providers(provider) if (prices or both) else []
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        done = []
        if fx or both:
            done.append(runs.fx_fetch(provider=runs.fx_provider(), since=since, overwrite=overwrite, actor="manage.py"))
        if prices or both:
            if not chosen:
                raise CommandError("No price provider is configured (MARKET_PRICE_PROVIDERS, ALPHAVANTAGE_API_KEY).")
            done.append(runs.prices_fetch(providers=chosen, since=since, overwrite=overwrite, actor="manage.py"))
        for run in done:
            self.stdout.write(
                f"{run.provider} {run.kind}: {run.get_status_display()}, {run.written} written, "
                f"{run.unchanged} unchanged, {run.failures} with failures"
            )
            if run.error:
                self.stderr.write(f"  run error: {run.error}")
            for entry in run.report:
                notes = [entry["error"]] if entry["error"] else []
                notes += [f"{r['date']} refused: {r['reason']}" for r in entry["rejected"]]
                notes += [f"{c['date']} kept: {c['reason']} (use --overwrite)" for c in entry["conflicts"]]
                line = f"  {entry['label']}: {entry['written']} written, {entry['unchanged']} unchanged"
                self.stdout.write(line + ("; " + "; ".join(notes) if notes else ""))
            failed = failed or run.status == FeedRunStatus.FAILED
        if failed:
            raise CommandError("A feed run failed; see the report above (operators were e-mailed).")
