"""The table client reads HTTP settings from the environment once, unless a proxy needs more."""

import pytest

from shared.adapters.tables.client import transport_options


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(__import__("os").environ):
        if "PROXY" in name.upper() or name.upper() in ("NETRC", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_without_a_proxy_the_session_stops_rescanning_the_environment(clean_env):
    clean_env.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    transport = transport_options()["transport"]
    assert transport.session.trust_env is False
    assert transport.session.verify == "/etc/ssl/certs/ca-certificates.crt"  # the CA bundle still applies


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "no_proxy", "NETRC"])
def test_a_proxy_keeps_the_per_request_handling(clean_env, variable):
    clean_env.setenv(variable, "x")
    assert transport_options() == {}
