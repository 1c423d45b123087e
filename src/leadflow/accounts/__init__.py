"""Accounts (tenants): API keys (hashed), settings and the built-in lead groups. Sole writer
of Account, ApiKey and LeadGroup."""
