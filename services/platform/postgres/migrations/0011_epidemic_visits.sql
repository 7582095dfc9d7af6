-- The epidemic "five visits, five helps" block (五走访五帮助) of each household's latest visit
-- that carried one: what the campaign totals (services/readmodel/queries.py `campaign_totals`,
-- the operator API's /v1/campaign, the demo report, shouwang_campaign_* metrics) add up.
--
-- One row per household, the latest block by the visit's own time (a late-synced older visit
-- never replaces a newer one). The family-impact account is free text about a family and is not
-- copied (the read model holds no personal notes): only whether one was recorded.
CREATE TABLE epidemic_visits (
    household_id              text        PRIMARY KEY,
    event_id                  text        NOT NULL,
    occurred_at               timestamptz NOT NULL,
    family_impact_recorded    boolean     NOT NULL,
    members_seeking_work      integer     NOT NULL CHECK (members_seeking_work >= 0),
    spring_farming_needs_help boolean     NOT NULL,
    unsold_value_yuan         bigint      NOT NULL CHECK (unsold_value_yuan >= 0),
    students_learning_at_home integer     NOT NULL CHECK (students_learning_at_home >= 0),
    students_without_access   integer     NOT NULL CHECK (students_without_access >= 0),
    updated_at                timestamptz NOT NULL DEFAULT now()
);

-- The totals look up each household's deliveries (a delivery stays a fact when the slot is later
-- released, so the steps are read, not the measure's status).
CREATE INDEX measure_steps_household_delivered ON measure_steps (household_id, occurred_at)
    WHERE step IN ('DELIVERED', 'COMPLETED');
