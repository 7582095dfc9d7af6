"""Admission's limits as pure code with a fake clock: per-token concurrency, the token bucket,
the operator reserve of broker slots; and the settings that configure them."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest

from services.platform.auth.tokens import new_token
from services.platform.config import Settings, SettingsError
from services.platform.quotas import DEFAULT_QUOTAS, Quota, QuotaOverride
from services.visits.admission import Admission, Shed, reserved_slots
from services.visits.service import Limits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def token(kind: str, token_id: str, **quota):
    types = ["HardshipReported"] if kind == "feed" else []
    towns = ["Gaofeng"] if kind == "cadre" else []
    return replace(
        new_token(kind, f"{kind}-x", towns, types, quota=QuotaOverride(**quota)),
        token_id=token_id,
    )


def test_a_token_has_at_most_its_concurrency_open_and_others_are_not_affected():
    admission, limits = Admission(Clock()), Limits()
    feed = token("feed", "a", concurrency=2)
    with contextlib.ExitStack() as held:
        held.enter_context(admission.request(feed, limits))
        held.enter_context(admission.request(feed, limits))
        with pytest.raises(Shed) as shed:
            held.enter_context(admission.request(feed, limits))
        assert shed.value.reason == "token_concurrency" and shed.value.retry_after == 1
        with admission.request(token("feed", "b", concurrency=2), limits):
            pass
    with admission.request(feed, limits):  # given back when the requests end
        pass


def test_the_bucket_allows_a_burst_then_the_rate_and_says_when_to_retry():
    clock = Clock()
    admission, limits = Admission(clock), Limits()
    cadre = token("cadre", "c", rate_per_second=0.5, burst=3)
    for _ in range(3):
        with admission.request(cadre, limits):
            pass
    with pytest.raises(Shed) as shed:
        with admission.request(cadre, limits):
            pass
    assert shed.value.reason == "token_rate" and shed.value.retry_after == 2  # 1 / 0.5 s
    clock.now += 1.0  # half a request's worth: still refused, retry after the other half
    with pytest.raises(Shed) as shed:
        with admission.request(cadre, limits):
            pass
    assert shed.value.retry_after == 1
    clock.now += 1.0
    with admission.request(cadre, limits):
        pass
    clock.now += 3600  # a long quiet time refills to the burst, no more
    for _ in range(3):
        with admission.request(cadre, limits):
            pass
    with pytest.raises(Shed):
        with admission.request(cadre, limits):
            pass


def test_a_refused_request_holds_nothing_and_spends_nothing():
    admission, limits = Admission(Clock()), Limits()
    feed = token("feed", "f", concurrency=1, rate_per_second=1, burst=2)
    with admission.request(feed, limits):
        for _ in range(5):  # refused for concurrency: the bucket is not drawn from
            with pytest.raises(Shed):
                with admission.request(feed, limits):
                    pass
    with admission.request(feed, limits):
        pass


def test_operators_keep_their_reserve_of_broker_slots():
    admission = Admission(Clock())
    limits = Limits(max_in_flight=8, operator_reserve=0.25)
    assert reserved_slots(limits) == 2
    feed, operator = token("feed", "f"), token("operator", "o")
    with contextlib.ExitStack() as held:
        for _ in range(6):
            held.enter_context(admission.broker_slot(feed, limits))
        with pytest.raises(Shed) as shed:
            held.enter_context(admission.broker_slot(token("cadre", "c"), limits))
        assert shed.value.reason == "overloaded" and "2 more are kept" in shed.value.message
        held.enter_context(admission.broker_slot(operator, limits))
        held.enter_context(admission.broker_slot(operator, limits))
        with pytest.raises(Shed):
            held.enter_context(admission.broker_slot(operator, limits))
        assert admission.writing == 8
    assert admission.writing == 0


def test_a_reserve_never_shuts_the_other_kinds_out():
    assert reserved_slots(Limits(max_in_flight=1, operator_reserve=0.9)) == 0
    assert reserved_slots(Limits(max_in_flight=4, operator_reserve=0.99)) == 3
    assert reserved_slots(Limits(max_in_flight=256, operator_reserve=0)) == 0


def test_a_token_record_overrides_its_kinds_quota_part_by_part():
    default = DEFAULT_QUOTAS["feed"]
    assert QuotaOverride().over(default) == default
    assert QuotaOverride(rate_per_second=2.5).over(default) == Quota(
        default.concurrency, 2.5, default.burst
    )
    for bad in ({"concurrency": 0}, {"rate_per_second": 0.0}, {"burst": -1}):
        with pytest.raises(ValueError):
            QuotaOverride(**bad)


def test_the_settings_read_every_kinds_limits_and_name_a_bad_variable():
    visits = Settings.from_env(
        {
            "SHOUWANG_VISITS_FEED_CONCURRENCY": "3",
            "SHOUWANG_VISITS_CADRE_RATE": "0.5",
            "SHOUWANG_VISITS_OPERATOR_BURST": "9",
            "SHOUWANG_VISITS_BODY_TIMEOUT_SECONDS": "12.5",
            "SHOUWANG_VISITS_OPERATOR_RESERVE": "0",
        }
    ).visits
    assert visits.quotas["feed"].concurrency == 3
    assert visits.quotas["cadre"].rate_per_second == 0.5
    assert visits.quotas["operator"].burst == 9
    assert visits.body_timeout_seconds == 12.5 and visits.operator_reserve == 0
    for name, value in (
        ("SHOUWANG_VISITS_FEED_CONCURRENCY", "0"),
        ("SHOUWANG_VISITS_CADRE_RATE", "fast"),
        ("SHOUWANG_VISITS_CADRE_RATE", "inf"),
        ("SHOUWANG_VISITS_OPERATOR_BURST", "-2"),
        ("SHOUWANG_VISITS_BODY_TIMEOUT_SECONDS", "0"),
        ("SHOUWANG_VISITS_OPERATOR_RESERVE", "1"),
        ("SHOUWANG_VISITS_OPERATOR_RESERVE", "a quarter"),
    ):
        with pytest.raises(SettingsError, match=f"^{name}="):
            Settings.from_env({name: value})
