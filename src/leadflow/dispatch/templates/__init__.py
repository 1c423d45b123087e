"""Predefined, localized follow-up templates."""
