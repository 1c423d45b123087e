"""Campaigns and their variants (sets of follow-ups): filters, schedule, steps, validation.
Sole writer of Campaign and Variant."""
