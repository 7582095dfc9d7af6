"""Where simulated events go: Kafka directly, the visits API, a JSON-lines file, or memory."""
