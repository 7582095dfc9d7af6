"""Issue #9 (security): a valid token of the wrong scope never writes, whatever it sends.

For every write route, single and batch, hypothesis builds bodies (valid samples with fields
replaced by arbitrary JSON values, or arbitrary JSON altogether) and posts them with tokens
whose scope does not cover the route's event type (a feed token for hardship reports only; a
cadre token for the routes cadres may not use) or with a revoked token. The answer is never a
2xx and the event log (the sink) stays empty.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.inputs import KINDS
from services.platform.auth.tokens import CADRE_DEFAULT_TYPES
from tests.unit.visits.conftest import Api
from tests.visits_samples import SAMPLES, sample

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)

# (role, slug) pairs outside the role's scope: the feed may write HardshipReported only;
# cadres may not write the cadre registry or review decisions; a revoked token nothing.
OUT_OF_SCOPE = sorted(
    [("feed", k.slug) for k in KINDS if k.event_type != "shouwang.events.HardshipReported"]
    + [("cadre", k.slug) for k in KINDS if k.event_type not in CADRE_DEFAULT_TYPES]
    + [("revoked", k.slug) for k in KINDS]
)


@st.composite
def bodies(draw, slug: str):
    if draw(st.booleans()):
        body = sample(slug)
        for field in draw(st.lists(st.sampled_from(sorted(SAMPLES[slug])), max_size=3)):
            body[field] = draw(json_values)
        return body
    return draw(json_values)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_a_token_of_the_wrong_scope_never_writes(api: Api, data) -> None:
    role, slug = data.draw(st.sampled_from(OUT_OF_SCOPE))
    body = data.draw(bodies(slug))
    if data.draw(st.booleans()):
        path, payload = f"/v1/{slug}:batch", {"records": [body]}
    else:
        path, payload = f"/v1/{slug}", body
    answer = await api.post(path, payload, role=role)
    assert answer.status in (401, 403, 413, 422), (role, path, answer.status)
    assert api.sink.records == []
