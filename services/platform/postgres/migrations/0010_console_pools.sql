-- The console's measures-and-pools page (issue #18): what the read model needs to show each
-- pool's queue in the order the support service serves it.
--
-- The support matcher queues a need by (catalogue priority, -urgency of the assessment that
-- triggered it), first come first served within equal keys (services/support/domain/matcher.py,
-- `Need.queue_key`). The measure rows already hold the triggering assessment's time
-- (recommended_at) and the waiting step's recorded_at; the catalogue's priorities and its
-- per-township capacities are configuration, written here when the projector starts, like
-- `pools`.
CREATE TABLE catalogue_measures (
    catalogue_id text        PRIMARY KEY,            -- catalogue entry id, e.g. employment.workshop-job
    type         text        NOT NULL,
    pool         text,                               -- catalogue pool id; null: no capacity limit
    priority     integer     NOT NULL,               -- lower first; also the waiting order
    catalogue    text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A township pool's instance may have its own capacity (`capacity_by_township`).
ALTER TABLE pools ADD COLUMN capacity_by_township jsonb NOT NULL DEFAULT '{}';

-- A pool's queue: the measures waiting for it, read per pool instance.
CREATE INDEX measures_waiting ON measures (waiting_for) WHERE status = 'waiting';

-- A cadre's work list and the field apps' sync ask for the households a cadre answers for:
-- without this index each request read every household (EXPLAIN at county scale, bench B9).
CREATE INDEX households_responsible_cadre ON households (responsible_cadre_id)
    WHERE responsible_cadre_id IS NOT NULL;
