"""Native webhooks from ecommerce platforms: credentials, inbound deliveries, Shopify checkouts."""
