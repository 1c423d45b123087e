"""Shared plumbing: database, clock, errors, signing, pagination."""
