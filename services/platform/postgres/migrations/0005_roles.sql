-- Database roles by duty (README "Database roles"): the projector writes the projections, the
-- operator API, the visits API and audit reads only, the token CLI writes api_tokens only, and
-- only the owner (the role that runs these migrations, DATABASE_URL) changes the schema.
--
-- The three roles are NOLOGIN groups: a deployment creates LOGIN roles in them (`shouwang db
-- create-login`). Roles are cluster-wide, so two databases on one server share them (each
-- database grants them its own privileges): creating them is skipped when they exist, and a
-- concurrent run in another database that creates one first is not an error. An owner without
-- CREATEROLE can run this migration once a DBA has created the three roles.

DO $$
DECLARE
    wanted text;
BEGIN
    FOREACH wanted IN ARRAY ARRAY['shouwang_projector', 'shouwang_reader', 'shouwang_tokens_admin']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = wanted) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', wanted);
            EXCEPTION
                -- Another database's migration created it between our check and our CREATE.
                WHEN duplicate_object OR unique_violation THEN NULL;
                WHEN insufficient_privilege THEN
                    RAISE EXCEPTION 'role % does not exist and % may not create roles', wanted,
                        current_user
                        USING HINT = 'a superuser or CREATEROLE role must run: CREATE ROLE '
                            || wanted || ' NOLOGIN; then migrate again';
            END;
        END IF;
    END LOOP;
END
$$;

-- Only the owner creates objects: no role makes tables in the read model's schema through
-- PUBLIC (PostgreSQL 15 and later already default to this; older servers do not).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO shouwang_projector, shouwang_reader, shouwang_tokens_admin;

-- Readers see every table and view, api_tokens included: the visits and operator APIs look
-- tokens up by hash (only hashes are stored).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO shouwang_reader;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO shouwang_reader;

-- The projector writes the projections (and pools, at start-up) but never tokens or the
-- migration record; TRUNCATE is not granted, a rebuild drops the database as the owner.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO shouwang_projector;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO shouwang_projector;
REVOKE ALL ON api_tokens FROM shouwang_projector;
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM shouwang_projector;
-- Its batch writes stage rows in temporary tables (COPY, then one INSERT ... SELECT). PUBLIC
-- has TEMPORARY by default; granting it by name keeps the projector working where a DBA
-- revoked PUBLIC's database privileges. Only the database's owner may grant it: an owner of
-- the schema who is not is told, and the default stays.
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO shouwang_projector', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'TEMPORARY on database % not granted to shouwang_projector (% does not own '
        'it); the projector relies on PUBLIC''s default', current_database(), current_user;
END
$$;

-- Issuing is an INSERT, revoking an UPDATE of revoked_at; tokens are never deleted (the record
-- of who held which token stays). schema_migrations: so the CLI can check the schema version.
GRANT SELECT, INSERT, UPDATE ON api_tokens TO shouwang_tokens_admin;
GRANT SELECT ON schema_migrations TO shouwang_tokens_admin;

-- Tables and sequences that later migrations create get the same grants without repeating
-- them. Default privileges belong to the creating role, so this is FOR ROLE the owner running
-- the migrations: later migrations must run as the same role. A later migration that adds a
-- table the projector must not write (like api_tokens) revokes the projector's grant itself.
DO $$
BEGIN
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public '
                   'GRANT SELECT ON TABLES TO shouwang_reader', current_user);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public '
                   'GRANT SELECT ON SEQUENCES TO shouwang_reader', current_user);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public '
                   'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO shouwang_projector',
                   current_user);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public '
                   'GRANT USAGE, SELECT ON SEQUENCES TO shouwang_projector', current_user);
END
$$;
