"""The lead lifecycle: captured -> enrolled -> followed up -> converted / unsubscribed / expired.

The sole writer of Lead (status and details), LeadEvent, Enrollment, Message, Conversion,
Suppression and Visit: capture, attribution (the one purchase matcher), enrollment,
conversions, suppression and visits, and dispatch (rules, scheduling, outcomes).
"""
