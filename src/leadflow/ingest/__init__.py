"""The event store: verify signed deliveries, record each once (Event), answer duplicates
with the first answer, and hand lead events and purchases to the lifecycle."""
