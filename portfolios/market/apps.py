from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "portfolios.market"
    label = "market"
    verbose_name = "Market data"
