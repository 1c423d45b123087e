"""Shared plumbing with no domain knowledge: database and migrations, clock, errors, ids,
pagination, signing, advisory locks, leases, jobs, mail transport."""
