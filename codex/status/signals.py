"""Beat's last run: recorded by the process that publishes the status check (beat), via Celery's
public ``before_task_publish`` signal, so a dead beat shows even while workers are fine."""

from celery.signals import before_task_publish

from .checks import CHECK_TASK, mark_beat_ran


@before_task_publish.connect(dispatch_uid="codex.status.beat_last_run")
def _record_beat_run(sender=None, **kwargs) -> None:
    if sender == CHECK_TASK:
        mark_beat_ran()
