-- Where each of a household's monitoring input records sits in the log (topic, partition,
-- offset): the console's history page reads exactly those records from Kafka instead of the
-- household's whole partition of eight topics (the p95 of ~340 ms at a county's scale came from
-- reading partitions end to end). Positions only: the records, with their notes and sealed
-- personal parts, stay in the log, which remains the source of truth (`shouwang explain` reads
-- it the same way and gives the same answer).
CREATE TABLE household_records (
    topic        text    NOT NULL,
    partition    integer NOT NULL CHECK (partition >= 0),
    kafka_offset bigint  NOT NULL CHECK (kafka_offset >= 0),
    household_id text    NOT NULL,
    PRIMARY KEY (topic, partition, kafka_offset)
);
CREATE INDEX household_records_household ON household_records (household_id);
