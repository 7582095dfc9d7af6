-- Problems from every source, with deadlines (issue #17, item 6). Problems found on visits are
-- now projected too (id `<visit_id>/<KIND>`, services/contract/problem_ids.py), next to those
-- on the problem list; each carries its due date:
--   default_due: the day found + the policy's `deadlines.problem_rectification_days` (the
--                policy in force that day; services/readmodel/rectification.py);
--   task_due:    the due date of the newest rectification task (TASK_ASSIGNED), which wins;
--   task_at:     when that task was set, so a late-synced older task never replaces it.
-- Rows written before this migration have neither (and no visit-found problems exist): the
-- read model is a projection, rebuilt from the log when its schema grows (README).
ALTER TABLE problems
    ADD COLUMN IF NOT EXISTS origin      text NOT NULL DEFAULT 'list',  -- visit | list
    ADD COLUMN IF NOT EXISTS visit_id    text,
    ADD COLUMN IF NOT EXISTS default_due date,
    ADD COLUMN IF NOT EXISTS task_due    date,
    ADD COLUMN IF NOT EXISTS task_at     timestamptz,
    -- when the step that named `responsible` happened: the newest naming step wins, whatever
    -- order steps and visits arrive in
    ADD COLUMN IF NOT EXISTS responsible_at timestamptz;

-- A person's problems (the work list, the problems board by responsible person).
CREATE INDEX IF NOT EXISTS problems_responsible ON problems (responsible, status);

-- What each visit found secured (a check SECURED, the policy card POSTED, a clean or untidy
-- home), by kind as `problems.check_item` names it: a later visit that finds a matter secured
-- closes the household's open problems of that kind found before it, as the monitoring fold
-- does. Kept per visit so the closure does not depend on the order visits arrive in: after each
-- batch the projector closes what any stored visit secured after a problem's last step.
CREATE TABLE IF NOT EXISTS secured_checks (
    household_id text        NOT NULL,
    kind         text        NOT NULL,  -- food, ..., water, policy_card, living_environment
    visit_id     text        NOT NULL,
    secured_at   timestamptz NOT NULL,  -- the visit's occurred_at (a correction's, if resent)
    PRIMARY KEY (household_id, kind, visit_id)
);
