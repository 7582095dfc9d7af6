-- A token's own request limits (services/platform/quotas.py), over its kind's defaults.
--
-- NULL keeps the kind's default (SHOUWANG_VISITS_<KIND>_CONCURRENCY, _RATE, _BURST): raising the
-- defaults raises every token that does not say otherwise. Set with `shouwang tokens issue
-- --max-concurrent N --rate R --burst B`; a bulk feed may get more, a suspect token less.
ALTER TABLE api_tokens
    ADD COLUMN max_concurrent  integer          CHECK (max_concurrent > 0),
    ADD COLUMN rate_per_second double precision CHECK (rate_per_second > 0
                                                       AND rate_per_second < 'Infinity'),
    ADD COLUMN burst           integer          CHECK (burst > 0);
