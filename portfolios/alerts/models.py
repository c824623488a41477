"""Alert rules and their firings (firm schema): built by the portfolios issue."""
