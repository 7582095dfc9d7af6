"""Visits' domain: JSON to contract records, and the checks beyond Avro types; pure."""
