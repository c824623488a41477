"""CRM writes, one module per subject. Keyword-only, validated, atomic; side effects (mail, tasks)
queued with on_commit.

Callers pass the acting user (``actor``: a User or an API key principal) so the advisor's book
(crm.access) is applied here too, not only in views. Errors: ``django.core.exceptions.ValidationError``
with field messages, ``PermissionDenied``, ``billing.entitlements.PlanLimitExceeded``.

Modules, in the order they build on each other: ``common`` (the book and linking helpers, field
lists, the two conflict errors), ``contacts``, ``companies``, ``deals`` (with the pipeline's
stages), ``activities`` (with tasks), ``merge``, ``imports`` (the CSV import's commit). The public
names are re-exported here, so ``from crm import services; services.contact_create(...)`` keeps
working (as for ``billing.services``); a test that replaces a function patches the module that
reads it (``crm.services.contacts``...). The newsletter's writes are in crm.newsletter.services."""

from .activities import activity_create, activity_update, task_complete, task_create
from .common import COMPANY_FIELDS, CONTACT_FIELDS, DEAL_FIELDS, DEFAULT_STAGES, NameTaken, StateConflict
from .companies import company_create, company_update
from .contacts import contact_create, contact_delete, contact_update
from .deals import deal_close, deal_create, deal_move, deal_update, pipeline_stage_save, pipeline_stages_ensure
from .imports import (
    import_cancel,
    import_commit,
    import_commit_finish,
    import_commit_queue,
    import_configure,
    import_start,
)
from .merge import company_merge, contact_merge

__all__ = [
    "COMPANY_FIELDS",
    "CONTACT_FIELDS",
    "DEAL_FIELDS",
    "DEFAULT_STAGES",
    "NameTaken",
    "StateConflict",
    "activity_create",
    "activity_update",
    "company_create",
    "company_merge",
    "company_update",
    "contact_create",
    "contact_delete",
    "contact_merge",
    "contact_update",
    "deal_close",
    "deal_create",
    "deal_move",
    "deal_update",
    "import_cancel",
    "import_commit",
    "import_commit_finish",
    "import_commit_queue",
    "import_configure",
    "import_start",
    "pipeline_stage_save",
    "pipeline_stages_ensure",
    "task_complete",
    "task_create",
]
