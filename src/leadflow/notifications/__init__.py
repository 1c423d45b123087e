"""Instant Lead Notifications: endpoints, the outbox (IlnDelivery rows written in the same
transaction as the change), signed delivery with retries, and the SSRF guard."""
