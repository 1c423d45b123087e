"""A/B tests of a campaign's variants: settings, per-variant results and statistics, and the
winner decision (exactly once). Sole writer of AbTest."""
