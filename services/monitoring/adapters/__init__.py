"""Monitoring's adapters: Avro translation, table row codec, policy files."""
