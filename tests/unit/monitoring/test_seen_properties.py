"""`state.Seen`, the event ids a state has applied, against a frozenset model.

Seen shares one append-only log between the states of a history and extends the newest in
place, so the property that matters is that no state ever sees another's additions: any tree
of extensions (the same state extended twice, an old state extended after a newer one) gives
each node exactly the set a frozenset would hold.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.monitoring.domain.state import Seen, seen_of

IDS = st.sampled_from([f"e{i}" for i in range(12)])


@settings(max_examples=300, deadline=None)
@given(st.lists(IDS, max_size=6), st.lists(st.tuples(st.integers(0, 10**6), IDS), max_size=40))
def test_every_node_of_any_extension_tree_holds_what_a_frozenset_would(start, steps):
    nodes = [(Seen(start), frozenset(start))]
    for pick, event_id in steps:
        seen, model = nodes[pick % len(nodes)]
        if event_id in seen:
            continue
        nodes.append((seen.adding(event_id), model | {event_id}))
    for seen, model in nodes:  # checked at the end: after every later extension
        assert seen == model and model == seen
        assert len(seen) == len(model) and set(seen) == model and bool(seen) == bool(model)
        assert hash(seen) == hash(model)
        assert all(i in seen for i in model) and not any(f"x{i}" in seen for i in model)
        assert seen_of(model) == seen and seen_of(seen) is seen


def test_a_set_of_other_ids_or_another_type_is_not_equal():
    assert Seen(["a", "b"]) != frozenset({"a", "c"})
    assert Seen(["a"]) != ["a"]
    assert Seen(["a", "a"]) == Seen(["a"]) and len(Seen(["a", "a"])) == 1
