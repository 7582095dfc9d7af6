-- Auditor tokens (services/platform/auth/tokens.py): read what an operator reads, within their
-- townships (NULL: every township), and write nothing, so they carry no event types.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_kind_check;
ALTER TABLE api_tokens
    ADD CONSTRAINT api_tokens_kind_check
        CHECK (kind IN ('cadre', 'feed', 'operator', 'auditor')),
    ADD CONSTRAINT api_tokens_auditor_writes_nothing
        CHECK (kind <> 'auditor' OR event_types IS NULL);
