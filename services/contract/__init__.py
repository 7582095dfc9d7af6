"""The event contract: schemas, Avro codec and topic catalogue shared by every service."""
