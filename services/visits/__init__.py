"""Visits: the ingest API through which field apps, department feeds and imports enter Kafka."""
