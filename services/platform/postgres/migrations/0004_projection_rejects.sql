-- Records the read model could not store (values impossible in the domain that still passed the
-- Avro contract). The position advances past them, so they never stall the projection; they are
-- kept here with the database's reason, and `replay --verify` can report them.
CREATE TABLE IF NOT EXISTS projection_rejects (
    projection   text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    kafka_offset bigint      NOT NULL,
    error        text        NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition, kafka_offset)
);
