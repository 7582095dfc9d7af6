-- Exceptions as the newest assessment of their review cycle states them (issue 17).
--
-- An assessment made before all of a decision's evidence had arrived (the worker folds the
-- topics as they come) can carry a policy_exception that the next assessment, with the
-- evidence, no longer carries. procedure_exceptions kept such a row forever. RiskAssessed v3
-- names the decision that opened the review cycle its exceptions belong to (`cycle`);
-- review_cycles keeps, per household and cycle, the newest assessment's exception ids (newest
-- `as_of` wins, ties to the last applied, so arrival order does not matter), and after each
-- batch a household's exception rows that the newest assessment of their cycle does not carry
-- are deleted (statements.SWEEP_EXCEPTIONS). An earlier cycle's rows are history and stay;
-- rows written before v3 (cycle NULL) are never swept.
CREATE TABLE review_cycles (
    household_id  text        NOT NULL,
    cycle         text        NOT NULL,              -- event id of the decision that opened it
    assessed_at   timestamptz NOT NULL,              -- the newest assessment's as_of
    assessment_id uuid        NOT NULL,
    exception_ids jsonb       NOT NULL DEFAULT '[]', -- procedure_exceptions ids it carries
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (household_id, cycle)
);
ALTER TABLE procedure_exceptions ADD COLUMN cycle text;
CREATE INDEX procedure_exceptions_cycle ON procedure_exceptions (household_id, cycle)
    WHERE cycle IS NOT NULL;
