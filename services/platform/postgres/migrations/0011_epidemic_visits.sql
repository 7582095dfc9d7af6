-- The epidemic "five visits, five helps" block (五走访五帮助) of each visit: what the campaign
-- totals (services/readmodel/campaign.py: the operator API's /v1/campaign, the demo report,
-- shouwang_campaign_* metrics) add up over each household's latest visit that carried one.
--
-- One row per visit (household, visit id), its newest version as the monitoring fold keeps it
-- (highest recorded_at, then occurred_at, then event id): a field app corrects a visit by sending
-- it again, so a correction replaces the figures, and one that drops the block (has_block false)
-- lets the household's previous block count again. The family-impact account is free text about
-- a family and is not copied (the read model holds no personal notes): only whether one was
-- recorded.
CREATE TABLE epidemic_visits (
    household_id              text        NOT NULL,
    visit_id                  text        NOT NULL,
    event_id                  text        NOT NULL,
    occurred_at               timestamptz NOT NULL,
    recorded_at               timestamptz NOT NULL,
    has_block                 boolean     NOT NULL,
    family_impact_recorded    boolean     NOT NULL,
    members_seeking_work      integer     NOT NULL CHECK (members_seeking_work >= 0),
    spring_farming_needs_help boolean     NOT NULL,
    unsold_value_yuan         bigint      NOT NULL CHECK (unsold_value_yuan >= 0),
    students_learning_at_home integer     NOT NULL CHECK (students_learning_at_home >= 0),
    students_without_access   integer     NOT NULL CHECK (students_without_access >= 0),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (household_id, visit_id)
);
-- each household's latest visit with a block
CREATE INDEX epidemic_visits_latest ON epidemic_visits (household_id, occurred_at DESC)
    WHERE has_block;

-- The totals look up each household's deliveries (a delivery stays a fact when the slot is later
-- released, so the steps are read, not the measure's status).
CREATE INDEX measure_steps_household_delivered ON measure_steps (household_id, occurred_at)
    WHERE step IN ('DELIVERED', 'COMPLETED');
