-- Operator actions (operator.actions: tokens issued and revoked, catalogues activated), one row
-- per event, so "who issued this token, who revoked it, which catalogue is in use since when"
-- is a query. A projection like the others: dropped and rebuilt from the log at will. Token
-- secrets and their hashes are not in the events, so they cannot be here either.
CREATE TABLE IF NOT EXISTS operator_actions (
    event_id        uuid        PRIMARY KEY,
    subject_id      text        NOT NULL,               -- token:ID or catalogue:ID
    action          text        NOT NULL,               -- TOKEN_ISSUED, TOKEN_REVOKED, ...
    actor           text        NOT NULL,
    source          text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    token_id        text,
    token_kind      text,
    token_holder    text,
    catalogue_id    text,
    catalogue_version integer,
    content_sha256  text,
    changes         jsonb       NOT NULL DEFAULT '[]',
    reason          text        NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS operator_actions_subject ON operator_actions (subject_id, occurred_at);
