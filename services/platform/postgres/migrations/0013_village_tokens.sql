-- Village-level tokens (services/platform/auth/tokens.py): a cadre token narrowed to villages of
-- its one township (a village committee, a village service point). NULL: any village of its
-- townships. The procedure's level rule at the visits door reads it (visits/domain/levels.py).
-- A village service point's token (service_point) is a cadre token of one village that records
-- households' own applications (APPLY) and nothing else.
ALTER TABLE api_tokens
    ADD COLUMN villages text[],
    ADD COLUMN service_point boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT api_tokens_service_point_of_one_village
        CHECK (NOT service_point OR (villages IS NOT NULL AND cardinality(villages) = 1)),
    ADD CONSTRAINT api_tokens_villages_not_empty
        CHECK (villages IS NULL OR cardinality(villages) > 0),
    ADD CONSTRAINT api_tokens_villages_of_one_township
        CHECK (villages IS NULL OR (kind = 'cadre' AND cardinality(townships) = 1));
