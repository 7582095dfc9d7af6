-- The read model: projections of the event log, rebuildable from it at any time.
--
-- No personal data: households and cadres appear by id and place only (no names, no ID-card
-- numbers, no free-text notes). No foreign keys between tables: each table is fed from its own
-- topic, and projections of different topics may run in any order, so a measure can arrive
-- before its household. For the same reason most columns are nullable: a row is upserted
-- (ON CONFLICT) with whatever the event that reached it first knows.

CREATE TABLE households (
    household_id         text        PRIMARY KEY,
    township             text,
    village              text,
    grp                  text,                       -- village group (组)
    registration_status  text,                       -- e.g. registered, lifted, never_registered
    members              integer     CHECK (members >= 0),
    labourers            integer     CHECK (labourers >= 0),  -- members able to work
    category             text,                       -- monitoring category; null: not monitored
    level                text,                       -- risk level of the latest assessment
    reasons              jsonb       NOT NULL DEFAULT '[]',
    workflow_status      text        NOT NULL DEFAULT 'none',  -- flagged, verifying, monitored...
    policy_version       text,                       -- the policy the latest assessment used
    assessed_at          timestamptz,
    responsible_cadre_id text,
    last_visit_at        timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX households_township_category ON households (township, category);
CREATE INDEX households_workflow_status ON households (workflow_status);

-- Every assessment change, in order: the history behind households.category and level.
CREATE TABLE assessments (
    assessment_id  uuid        PRIMARY KEY,          -- uuid5 of the source event: retries rewrite it
    household_id   text        NOT NULL,
    category       text,
    level          text,
    reasons        jsonb       NOT NULL DEFAULT '[]',
    policy_version text        NOT NULL,
    assessed_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assessments_household ON assessments (household_id, assessed_at);

CREATE TABLE measures (
    measure_id        text        PRIMARY KEY,
    household_id      text        NOT NULL,
    type              text        NOT NULL,          -- industry, employment, microcredit, pairing...
    status            text        NOT NULL,          -- recommended, assigned, delivered, ...
    pool              text,                          -- capacity pool, e.g. a township
    cadre_id          text,
    priority          integer,
    quantities        jsonb       NOT NULL DEFAULT '{}',  -- e.g. {"seedlings": 80, "yuan": 50000}
    reasons           jsonb       NOT NULL DEFAULT '[]',
    recommended_at    timestamptz,
    status_changed_at timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX measures_household ON measures (household_id);
CREATE INDEX measures_pool_status ON measures (pool, status);

-- Problems found on visits and their rectification (边发现边整改).
CREATE TABLE problems (
    problem_id   text        PRIMARY KEY,
    household_id text        NOT NULL,
    check_item   text        NOT NULL,               -- food, clothing, education, medical, housing,
                                                     -- water, policy_card...; `check` is reserved
    status       text        NOT NULL,               -- open, rectified
    responsible  text,                               -- cadre or department id
    found_at     timestamptz NOT NULL,
    rectified_at timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX problems_household ON problems (household_id);
CREATE INDEX problems_status ON problems (status, found_at);

CREATE TABLE cadres (
    cadre_id       text        PRIMARY KEY,
    township       text,
    village        text,
    department     text,
    max_households integer     CHECK (max_households >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Tracking records: the last offset each projection applied per topic partition, written in
-- the same transaction as the effect, so redelivery after a crash is recognised and skipped.
CREATE TABLE projection_positions (
    projection  text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    last_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);
