"""The task list and completing a task."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import F
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from codex.idempotent_forms import idempotent_form
from codex.tables import Sortable, table_page

from .. import access, forms, selectors, services

# --- tasks ------------------------------------------------------------------------------------------


TASK_SORTS: dict[str, Sortable] = {
    "due": F("due_date").asc(nulls_last=True),
    "subject": "subject",
    "contact": (F("contact__last_name").asc(nulls_last=True), F("contact__first_name").asc(nulls_last=True)),
    "done": F("completed_at").asc(nulls_last=True),
}


@login_required
@idempotent_form
def task_list(request):
    today = timezone.localdate()
    form = forms.TaskForm(request.POST or None)
    if request.method == "POST":
        access.require_write(request.user)
        if form.is_valid():
            services.task_create(
                owner=request.user,
                title=form.cleaned_data["subject"],
                due_date=form.cleaned_data["due_date"],
                body=form.cleaned_data["body"],
            )
            messages.success(request, "Task added.")
            return redirect("crm:task-list")
    due = list(selectors.tasks_due_for(request.user, due="due", today=today))
    filters = forms.TaskFilterForm(request.GET)
    when = filters.cleaned_data.get("when") if filters.is_bound and filters.is_valid() else ""
    table = table_page(
        request,
        filters.filter(selectors.tasks_due_for(request.user, due=when or "later", today=today)),
        sorts=TASK_SORTS,
        default="due",
        per_page=50,
    )
    return render(
        request,
        "crm/task_list.html",
        {
            "overdue": [t for t in due if t.due_date < today],
            "due_today": [t for t in due if t.due_date == today],
            "tasks_page": table.page,
            "filters": filters,
            "when_label": dict(filters.fields["when"].choices)[when],
            "table_sort": table.sort,
            "form": form,
            "today": today,
            "can_write": access.can_write(request.user),
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def task_complete(request, pk: int):
    task = access.activity_for_user(request.user, pk, write=True)
    try:
        services.task_complete(actor=request.user, task=task, done=request.POST.get("done", "1") == "1")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"“{task}” marked {'done' if task.completed_at else 'not done'}.")
    nxt = request.POST.get("next", "")
    return redirect(nxt if nxt.startswith("/crm/") else reverse("crm:task-list"))
