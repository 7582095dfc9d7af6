-- The entry and exit procedure (issue 17 item 4), as the newest assessment of each household
-- states it (RiskAssessed v2 `procedure`), and the exceptions its assessments record.
--
-- household_procedures: one row per household that has had an assessment since this
-- migration, kept by the same guard as households' assessment columns (the newest `as_of`
-- wins, ties to the last applied), so the answer does not depend on the order records arrive
-- in. `awaiting` NULL: no procedure under way (the newest assessment carries none).
CREATE TABLE household_procedures (
    household_id  text        PRIMARY KEY,
    assessed_at   timestamptz NOT NULL,              -- the assessment's as_of
    assessment_id uuid        NOT NULL,
    direction     text        CHECK (direction IN ('entry', 'exit')),
    awaiting      text        CHECK (awaiting IN ('village_deliberation', 'notice',
                                  'notice_running', 'township_review', 'county_approval')),
    since         timestamptz,                       -- waiting for that step since
    due           date,                              -- last day for it; NULL: no limit
    notice_start  date,
    notice_ends   date,
    objections    integer     NOT NULL DEFAULT 0 CHECK (objections >= 0),
    steps         jsonb       NOT NULL DEFAULT '[]', -- event ids of the cycle's steps
    step_overdue  boolean     NOT NULL DEFAULT false, -- the monitor's procedure_step_overdue
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((direction IS NULL) = (awaiting IS NULL))
);
CREATE INDEX household_procedures_awaiting ON household_procedures (awaiting, household_id)
    WHERE awaiting IS NOT NULL;

-- Exceptions that took effect (reasons procedure_exception and policy_exception): one row per
-- household, decision and code, however many later assessments repeat the reason. The first
-- assessment that carried it dates it (`first_seen_at`, its as_of) and gives its message; the
-- id orders the operator API's pages.
CREATE TABLE procedure_exceptions (
    exception_id      text        PRIMARY KEY,       -- household_id/decision_event_id/code
    household_id      text        NOT NULL,
    decision_event_id text        NOT NULL,          -- the reason's first event: the decision
    code              text        NOT NULL,
    message           text        NOT NULL,
    event_ids         jsonb       NOT NULL DEFAULT '[]',
    assessment_id     uuid        NOT NULL,          -- the first assessment that carried it
    first_seen_at     timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX procedure_exceptions_household ON procedure_exceptions (household_id);

-- The review decisions (household.reviews), so a household's page names the steps its
-- procedure lists (`household_procedures.steps` are their event ids) with what, when, by whom
-- and how they ended. One row per event, written once (a re-sent event writes nothing new).
-- The decision's `reason` is free text about a family and is not copied (the read model holds
-- no personal notes): the household's history page reads it from the log.
CREATE TABLE review_steps (
    event_id        text        PRIMARY KEY,
    household_id    text        NOT NULL,
    decision        text        NOT NULL,            -- the contract's Decision symbol
    outcome         text,                            -- PASSED | RETURNED (deliberation, review)
    exception       boolean     NOT NULL DEFAULT false,
    category        text,
    body            text        NOT NULL,
    approving_level text        NOT NULL,
    notice_start    date,
    notice_days     integer     NOT NULL DEFAULT 0 CHECK (notice_days >= 0),
    actor           text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL
);
CREATE INDEX review_steps_household ON review_steps (household_id, occurred_at);
