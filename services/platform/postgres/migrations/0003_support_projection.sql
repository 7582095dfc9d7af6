-- Support and projector additions to the read model (issue 5). Adds columns with defaults only;
-- 0001's tables keep their meaning.

-- households: the guards that make projections order-independent, and overdue deadlines.
ALTER TABLE households
    ADD COLUMN weak_labourers   integer     CHECK (weak_labourers >= 0),
    ADD COLUMN registry_at      timestamptz,            -- occurred_at of the registry row applied
    ADD COLUMN overdue          jsonb       NOT NULL DEFAULT '[]',  -- e.g. ["visit_overdue"]
    ADD COLUMN events_projected integer     NOT NULL DEFAULT 0;     -- events that touched the row
CREATE INDEX households_overdue ON households ((jsonb_array_length(overdue))) WHERE overdue <> '[]';

-- measures: the catalogue entry, what a waiting measure waits for, money and term, and the
-- lifecycle rank that keeps a late-synced step from moving a measure backwards.
ALTER TABLE measures
    ADD COLUMN catalogue_id  text,
    ADD COLUMN waiting_for   text,                     -- pool; set while status = 'waiting'
    ADD COLUMN amount_yuan   bigint,
    ADD COLUMN term_months   integer,
    ADD COLUMN status_rank   smallint NOT NULL DEFAULT 0;
CREATE INDEX measures_status_type ON measures (status, type);
CREATE INDEX measures_cadre ON measures (cadre_id) WHERE cadre_id IS NOT NULL;

-- Every step of every measure, as recorded (the history behind measures.status).
CREATE TABLE measure_steps (
    event_id     uuid        PRIMARY KEY,
    measure_id   text        NOT NULL,
    household_id text        NOT NULL,
    step         text        NOT NULL,
    waiting_for  text,
    source_topic text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL
);
CREATE INDEX measure_steps_measure ON measure_steps (measure_id, occurred_at);

ALTER TABLE cadres
    ADD COLUMN active      boolean     NOT NULL DEFAULT true,
    ADD COLUMN registry_at timestamptz;
CREATE INDEX cadres_township ON cadres (township, village);

ALTER TABLE problems
    ADD COLUMN status_at timestamptz;

-- Capacity pools: written from the measure catalogue when the projector starts (configuration,
-- not events); pool instances of township pools are listed per township seen.
CREATE TABLE pools (
    pool       text        PRIMARY KEY,            -- catalogue pool id
    scope      text        NOT NULL,               -- county | township
    kind       text        NOT NULL,               -- slots | cadres
    capacity   integer,                            -- per instance; null for cadre pools
    unit       text        NOT NULL,
    catalogue  text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A cadre's load: open pairings against the maximum.
CREATE VIEW cadre_load AS
SELECT c.cadre_id, c.township, c.village, c.department, c.max_households, c.active,
       count(m.measure_id) FILTER (WHERE m.status IN ('recommended', 'accepted', 'delivered'))
           AS households
FROM cadres c
LEFT JOIN measures m ON m.cadre_id = c.cadre_id AND m.type = 'PAIRING'
GROUP BY c.cadre_id;

-- Use of each pool instance: slots held and households waiting.
CREATE VIEW pool_use AS
SELECT coalesce(m.pool, m.waiting_for) AS pool_instance,
       count(*) FILTER (WHERE m.status IN ('recommended', 'accepted', 'delivered')) AS held,
       count(*) FILTER (WHERE m.status = 'waiting') AS waiting
FROM measures m
WHERE coalesce(m.pool, m.waiting_for) IS NOT NULL
GROUP BY 1;
