from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "portfolios.alerts"
    label = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        # Imports here, not at the top: app modules load models, which need the app registry ready.
        from codex.notifications.signals import notifications_read
        from portfolios.market.services import prices_imported

        from .services import alert_notifications_read_in_centre, alerts_enqueue_all_firms

        # After an import of prices commits, every active firm re-evaluates its rules.
        prices_imported.connect(alerts_enqueue_all_firms, dispatch_uid="alerts.enqueue_all_firms")
        # Alert notices read under the bell are read on the alerts page too.
        notifications_read.connect(alert_notifications_read_in_centre, dispatch_uid="alerts.read_in_centre")
