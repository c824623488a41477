from django.core.management.base import BaseCommand

from billing.services import plans_seed


class Command(BaseCommand):
    help = "Create or update the default plans (idempotent)."

    def handle(self, *args, **options):
        plans = plans_seed()
        if options["verbosity"] > 1:
            self.stdout.write(f"{len(plans)} plans")
