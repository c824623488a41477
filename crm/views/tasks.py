"""The task list and completing a task."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from codex.idempotent_forms import idempotent_form

from .. import access, forms, selectors, services

# --- tasks ------------------------------------------------------------------------------------------


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
    later = selectors.tasks_due_for(request.user, due="open", today=today).exclude(due_date__lte=today)[:100]
    return render(
        request,
        "crm/task_list.html",
        {
            "overdue": [t for t in due if t.due_date < today],
            "due_today": [t for t in due if t.due_date == today],
            "later": later,
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
