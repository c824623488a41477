"""The notification centre: per-member notices (alerts fired, imports finished, tasks assigned,
webhook endpoints disabled, fee runs ready), shown under the bell and pushed live (codex.live)."""
