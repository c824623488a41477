"""Live market-data providers (docs/market-data.md): ECB FX, Stooq and Alpha Vantage closes.

``runs`` holds the services a beat task and ``manage.py fetch_market_data`` call; each provider is a
small module parsing its vendor's answer; ``http`` is their one door to the network.
"""
