"""Support's adapters: Avro translation and the table codec."""
