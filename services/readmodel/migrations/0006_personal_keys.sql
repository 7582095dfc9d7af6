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

-- Privileges, when the duty roles of the roles migration exist (they do on a merged schema):
-- the projector never touches keys; the visits API (reader role) makes keys on first use but
-- cannot delete them; shredding and reading personal data (`shouwang personal`) is the
-- owner's. The reader's default SELECT stays: wrapped keys open only with the master key.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shouwang_projector') THEN
        REVOKE ALL ON personal_keys, personal_keys_shredded FROM shouwang_projector;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shouwang_reader') THEN
        GRANT SELECT, INSERT ON personal_keys TO shouwang_reader;
    END IF;
END
$$;
