from tests.alerts.conftest import aapl, import_closes  # noqa: F401  (an alert firing into the bell)
