"""The table client reads HTTP settings from the environment once, unless a proxy needs more."""

import asyncio

import pytest

from shared.adapters.tables import loop
from shared.adapters.tables.client import environment_configures_http, transport_options


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


def test_the_async_client_stops_looking_proxies_up_per_request(clean_env):
    """aiohttp with trust_env looks proxies and .netrc up again for every request, on a thread."""
    assert not environment_configures_http()
    transport = loop.transport_options(environment_configures_http())["transport"]

    async def session_trusts_env() -> bool:
        async with transport:  # opens its aiohttp session on this loop, closes it after
            return transport.session.trust_env

    assert asyncio.run(session_trusts_env()) is False


def test_a_proxy_keeps_the_async_clients_defaults(clean_env):
    clean_env.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert environment_configures_http()
    assert loop.transport_options(environment_configures_http()) == {}


def test_with_an_endpoint_each_loop_reads_with_an_async_managed_identity(clean_env):
    """Production reads through the app's identity: the async client needs an async credential of
    its own loop (built here without a request; no identity endpoint is asked)."""
    from types import SimpleNamespace

    from azure.identity.aio import ManagedIdentityCredential

    settings = SimpleNamespace(
        tables_connection=None,
        tables_endpoint="https://dev8tables.table.core.windows.net",
        managed_identity_client_id="00000000-0000-0000-0000-000000000001",
    )
    open_service = loop.opener_from_settings(settings, environment_configures_http=False)

    async def opened() -> tuple[object, str]:
        first = open_service()
        try:
            return first.credential, first.service.url
        finally:
            await first.service.close()
            await first.credential.close()

    credential, url = asyncio.run(opened())
    assert isinstance(credential, ManagedIdentityCredential)
    assert url.startswith("https://dev8tables.table.core.windows.net")
