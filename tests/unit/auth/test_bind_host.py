"""SHOUWANG_BIND_HOST: every HTTP server on loopback unless configured otherwise."""

from __future__ import annotations

import pytest

from services.platform.config import Settings, SettingsError


def test_servers_listen_on_loopback_by_default_and_where_configured_otherwise():
    default = Settings.from_env({})
    assert (default.bind_host, default.visits.host) == ("127.0.0.1", "127.0.0.1")
    opened = Settings.from_env({"SHOUWANG_BIND_HOST": "0.0.0.0"})
    assert (opened.bind_host, opened.visits.host) == ("0.0.0.0", "0.0.0.0")
    both = Settings.from_env({"SHOUWANG_BIND_HOST": "::", "SHOUWANG_VISITS_HOST": "10.0.0.5"})
    assert (both.bind_host, both.visits.host) == ("::", "10.0.0.5")


@pytest.mark.parametrize("value", ["http://0.0.0.0", "0.0.0.0:8081", "a host", "[::1]"])
def test_a_bind_host_that_is_not_an_address_is_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match="SHOUWANG_BIND_HOST"):
        Settings.from_env({"SHOUWANG_BIND_HOST": value})
