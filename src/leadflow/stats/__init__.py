"""Results: hourly counters kept in the transactions that send and credit (sole writer of
StatsCounter), and the figures built from them."""
