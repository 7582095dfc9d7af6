"""What services share: configuration, Kafka clients and worker machinery, PostgreSQL, tokens, personal-data keys, operator actions."""
