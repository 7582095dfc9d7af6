-- Bearer tokens of the visits ingest API (services/visits/tokens.py).
--
-- Not a projection: tokens are operator-issued credentials, not facts of the event log, so this
-- table is not rebuilt from Kafka (dropping the read model revokes every token).
-- Only the SHA-256 of a token is stored; the token itself is shown once, when it is issued.
-- NULL townships / event_types mean "any"; a cadre is always bound to townships and a
-- department feed to event types.

CREATE TABLE api_tokens (
    token_id     text        PRIMARY KEY,              -- public id for list/revoke, not secret
    token_sha256 text        NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    kind         text        NOT NULL CHECK (kind IN ('cadre', 'feed', 'operator')),
    holder       text        NOT NULL CHECK (holder <> ''),  -- becomes the records' actor
    townships    text[],
    event_types  text[],
    note         text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CHECK (townships IS NULL OR cardinality(townships) > 0),
    CHECK (event_types IS NULL OR cardinality(event_types) > 0),
    CHECK (kind <> 'cadre' OR townships IS NOT NULL),
    CHECK (kind <> 'feed' OR event_types IS NOT NULL)
);
CREATE INDEX api_tokens_holder ON api_tokens (holder);
