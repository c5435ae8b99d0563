"""Events between services: envelope, contracts, subscriptions, outbox, relay, consumer."""
