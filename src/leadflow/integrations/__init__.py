"""Native webhooks from ecommerce platforms: credentials, per-platform formats (verify and
map), inbound deliveries, and the Shopify checkout watcher."""
