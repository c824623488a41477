from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "portfolios.alerts"
    label = "alerts"
    verbose_name = "Alerts"
