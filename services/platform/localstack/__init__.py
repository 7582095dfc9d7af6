"""A no-Docker local stack: Kafka (KRaft) from Maven Central jars and an embedded PostgreSQL."""
