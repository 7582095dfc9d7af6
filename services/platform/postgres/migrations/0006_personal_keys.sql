-- Data keys for personal data, one per subject (household or cadre), wrapped by the master key.
-- NOT a projection: these rows exist nowhere else. Dropping the read model to rebuild it from
-- the log must keep these two tables, or every sealed personal record becomes unreadable.
CREATE TABLE personal_keys (
    subject_kind  text        NOT NULL CHECK (subject_kind IN ('household', 'cadre')),
    subject_id    text        NOT NULL,
    key_id        uuid        NOT NULL UNIQUE,
    master_key_id text        NOT NULL,  -- fingerprint of the master key that wrapped it
    wrapped_key   bytea       NOT NULL,  -- nonce || AES-256-GCM(master, data key)
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_kind, subject_id)
);

-- Who erased which key, when and why (crypto-shredding); the key itself is gone.
CREATE TABLE personal_keys_shredded (
    key_id       uuid        PRIMARY KEY,
    subject_kind text        NOT NULL,
    subject_id   text        NOT NULL,
    created_at   timestamptz NOT NULL,
    shredded_at  timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL CHECK (actor <> ''),
    reason       text        NOT NULL CHECK (reason <> '')
);
CREATE INDEX personal_keys_shredded_subject ON personal_keys_shredded (subject_kind, subject_id);

-- Privileges (README "Database roles"). The keys are the owner's: shredding and reading
-- personal data (`shouwang personal`) run as the owner. The projector and the read-only roles
-- never see them. The visits API and the imports seal personal data, so they need keys made on
-- first use, but must not delete any: they get their own group, shouwang_visits, which reads
-- tokens, the household directory and the schema version, and may add keys, nothing more.
-- The roles migration made 0005's groups; this one adds shouwang_visits the same way.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shouwang_visits') THEN
        BEGIN
            CREATE ROLE shouwang_visits NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role shouwang_visits does not exist and % may not create roles',
                    current_user
                    USING HINT = 'a superuser or CREATEROLE role must run: CREATE ROLE '
                        || 'shouwang_visits NOLOGIN; then migrate again';
        END;
    END IF;
END
$$;

-- Named tables, not membership of shouwang_reader: granting a role needs ADMIN on it, which
-- an owner without CREATEROLE lacks (README "Database roles").
GRANT USAGE ON SCHEMA public TO shouwang_visits;
GRANT SELECT ON api_tokens, households, schema_migrations TO shouwang_visits;
-- The default privileges of 0005 gave these new tables to the projector and the reader.
REVOKE ALL ON personal_keys, personal_keys_shredded FROM shouwang_projector, shouwang_reader;
GRANT SELECT, INSERT ON personal_keys TO shouwang_visits;
GRANT SELECT ON personal_keys_shredded TO shouwang_visits;
