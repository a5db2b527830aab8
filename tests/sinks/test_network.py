"""Network sinks: a forged request to an internal address never connects.

An internal canary server on 127.0.0.1 records every hit; a "partner" on 127.0.0.2 stands in
for a public server (allowed in ``ssrf_allow``) that answers with redirects.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import loopback
import pytest
from loopback import BLOCKED, EXCEPTION_GROUP, HTTP_CLIENTS, loopback_server
from serving import serving

import rasp
from rasp import AttackBlocked
from rasp.context import _CURRENT
from rasp.sources import wsgi_context


def _server(host: str, bounce_to: str = "") -> Iterator[tuple[str, list[str]]]:
    # /bounce answers with Location, /bounce-uri with the old URI header, which aiohttp
    # follows when there is no Location.
    headers = {"/bounce": "Location", "/bounce-uri": "URI"}

    def redirect(path: str) -> tuple[str, str] | None:
        return (headers[path], bounce_to) if path in headers else None

    with loopback_server(host, redirect=redirect) as served:
        yield served


@pytest.fixture(scope="module")
def canary() -> Iterator[tuple[str, list[str]]]:
    yield from _server("127.0.0.1")


@pytest.fixture(scope="module")
def partner(canary: tuple[str, list[str]]) -> Iterator[tuple[str, list[str]]]:
    """Redirects ``/bounce`` to the internal canary: the user never names the canary."""
    yield from _server("127.0.0.2", bounce_to=f"{canary[0]}/after-redirect")


@pytest.fixture
def agent() -> Iterator[rasp.Config]:
    config = rasp.protect(rasp.Config(ssrf_allow="127.0.0.2"))
    yield config
    rasp.unprotect()


def _on_uvloop(client: Callable[[str], Any]) -> Callable[[str], Any]:
    """The same asyncio client on uvloop, which resolves in C unless the client calls
    ``loop.getaddrinfo`` first (httpx through anyio and aiohttp do)."""

    def run(url: str) -> Any:
        uvloop = pytest.importorskip("uvloop")
        policy = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        try:
            return client(url)
        finally:
            asyncio.set_event_loop_policy(policy)

    return run


def _asyncio_stream(url: str) -> Any:
    host, port = url.split("/")[2].rsplit(":", 1)

    async def main() -> None:
        _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        writer.close()

    asyncio.run(main())


_BLOCKED = BLOCKED
_GROUP = EXCEPTION_GROUP


def _holds_block(error: BaseException) -> bool:
    if isinstance(error, _GROUP):
        return all(_holds_block(inner) for inner in error.exceptions)
    return isinstance(error, AttackBlocked)


def _calling_file(client: str) -> str:
    """The file whose code calls the client library: the app's frame an incident names."""
    return str(loopback.__file__) if client.removesuffix("-uvloop") in HTTP_CLIENTS else __file__


CLIENTS: dict[str, Callable[[str], Any]] = {
    **HTTP_CLIENTS,
    "asyncio.open_connection": _asyncio_stream,
    "asyncio.open_connection-uvloop": _on_uvloop(_asyncio_stream),
    "httpx-uvloop": _on_uvloop(HTTP_CLIENTS["httpx-async"]),
    "aiohttp-uvloop": _on_uvloop(HTTP_CLIENTS["aiohttp"]),
}
FOLLOWING = ["urllib", "requests", "urllib3", "httpx", "httpx-async", "aiohttp", "aiohttp-uvloop"]


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("spelling", ["127.0.0.1", "2130706433", "localhost", "[::ffff:127.0.0.1]"])
def test_forged_request_is_blocked_before_it_connects(
    agent: rasp.Config, canary: tuple[str, list[str]], client: str, spelling: str
) -> None:
    base, hits = canary
    if client.startswith(("http.client", "asyncio.open_connection")) and spelling.startswith("["):
        pytest.skip("these take a host, not a URL")
    if client.startswith("aiohttp") and spelling == "2130706433":
        pytest.skip("aiohttp refuses the spelling itself (not a canonical IPv4 address)")
    url = f"http://{spelling}:{base.rsplit(':', 1)[1]}/secret"
    before = len(hits)
    with serving(url=url) as context, pytest.raises(_BLOCKED) as caught:
        CLIENTS[client](url)
    assert _holds_block(caught.value)
    incident = context.blocked
    assert incident is not None
    assert incident.kind.value == "ssrf"
    assert incident.input_source == "query.url"
    assert " -> " in incident.statement  # the host, then the addresses it resolved to
    if client in ("httpx-async", "aiohttp", "httpx-uvloop", "aiohttp-uvloop"):
        # They connect in tasks of their own (happy eyeballs): no app frame above the check.
        assert incident.code_file in (_calling_file(client), None)
    else:
        assert incident.code_file == _calling_file(client)
    assert len(hits) == before


@pytest.mark.parametrize(
    ("client", "spelling"),
    [
        ("httpx", "127\u30020\u30020\u30021"),
        ("httpx", "127\uff0e0\uff0e0\uff0e1"),
        ("aiohttp", "127\u30020\u30020\u30021"),
        (
            "aiohttp",
            "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",
        ),  # fullwidth localhost
        ("aiohttp", "\U0001ccf1\U0001ccf2\U0001ccf7.0.0.1"),  # Unicode 16 outlined digits
    ],
)
def test_a_host_the_client_folds_to_an_internal_address_is_blocked(
    agent: rasp.Config, canary: tuple[str, list[str]], client: str, spelling: str
) -> None:
    # These clients map the host through IDNA first: getaddrinfo sees 127.0.0.1/localhost.
    base, hits = canary
    url = f"http://{spelling}:{base.rsplit(':', 1)[1]}/secret"
    before = len(hits)
    with serving(url=url) as context, pytest.raises(_BLOCKED):
        CLIENTS[client](url)
    assert context.blocked is not None
    assert context.blocked.statement.split(" -> ")[0] in ("127.0.0.1", "localhost")
    assert len(hits) == before


@pytest.mark.parametrize("client", ["aiohttp", "aiohttp-uvloop"])
def test_redirect_by_the_uri_header_is_blocked(
    agent: rasp.Config, canary: tuple[str, list[str]], partner: tuple[str, list[str]], client: str
) -> None:
    url = f"{partner[0]}/bounce-uri"
    before = len(canary[1])
    with serving(url=url) as context, pytest.raises(_BLOCKED):
        CLIENTS[client](url)
    assert context.blocked is not None
    assert context.blocked.input_source == "redirect.location"
    assert len(canary[1]) == before


def test_a_client_address_header_is_not_a_host_the_user_chose(
    agent: rasp.Config, canary: tuple[str, list[str]]
) -> None:
    # A proxy put the client's (internal) address there; the app calls its own service,
    # which happens to be that address.
    base, hits = canary
    before = len(hits)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
               "HTTP_X_CLIENT_IP": "127.0.0.1", "HTTP_CF_CONNECTING_IP": "127.0.0.1",
               "HTTP_TRUE_CLIENT_IP": "127.0.0.1"}  # fmt: skip
    token = _CURRENT.set(wsgi_context(environ, None))
    try:
        assert urllib.request.urlopen(f"{base}/health", timeout=5).read() == b"ok"
    finally:
        _CURRENT.reset(token)
    assert len(hits) == before + 1
    # The same address from any other header is the user's choice.
    environ["HTTP_X_TARGET"] = "127.0.0.1"
    token = _CURRENT.set(wsgi_context(environ, None))
    try:
        with pytest.raises(AttackBlocked):
            urllib.request.urlopen(f"{base}/health", timeout=5)
    finally:
        _CURRENT.reset(token)


@pytest.mark.parametrize("client", FOLLOWING)
def test_redirect_to_an_internal_address_is_blocked(
    agent: rasp.Config, canary: tuple[str, list[str]], partner: tuple[str, list[str]], client: str
) -> None:
    url = f"{partner[0]}/bounce"
    before = len(canary[1])
    with serving(url=url) as context, pytest.raises(_BLOCKED) as caught:
        CLIENTS[client](url)
    assert _holds_block(caught.value)
    assert context.blocked is not None
    assert context.blocked.input_source == "redirect.location"
    assert len(canary[1]) == before


@pytest.mark.parametrize("client", list(CLIENTS))
def test_the_apps_own_internal_calls_pass(
    agent: rasp.Config, canary: tuple[str, list[str]], client: str
) -> None:
    # The host comes from the app's config; the user's input is unrelated to it.
    with serving(q="127.0.0.1 is my favourite address", url="http://example.com/"):
        CLIENTS[client](f"{canary[0]}/health")


def test_allowed_partner_is_reached(agent: rasp.Config, partner: tuple[str, list[str]]) -> None:
    with serving(url=f"{partner[0]}/feed"):
        assert urllib.request.urlopen(f"{partner[0]}/feed", timeout=5).read() == b"ok"


def test_unresolvable_host_is_the_apps_error(agent: rasp.Config) -> None:
    with serving(url="http://partner.shop.invalid/"), pytest.raises(urllib.error.URLError):
        urllib.request.urlopen("http://partner.shop.invalid/", timeout=5)


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "100.100.100.200"])
def test_metadata_is_blocked_even_without_user_input(agent: rasp.Config, address: str) -> None:
    with serving(q="hello"), pytest.raises(AttackBlocked) as caught:
        socket.getaddrinfo(address, 80)
    assert caught.value.incident.input_source == ""
    socket.getaddrinfo(address, 80)  # outside a request: the app's business
    rasp.protect(rasp.Config(ssrf_allow=address))
    with serving(q="hello"):
        socket.getaddrinfo(address, 80)


def test_outside_a_request_nothing_is_judged(
    agent: rasp.Config, canary: tuple[str, list[str]]
) -> None:
    assert urllib.request.urlopen(f"{canary[0]}/startup", timeout=5).read() == b"ok"


def test_unprotect_puts_the_originals_back() -> None:
    import inspect

    aiohttp = pytest.importorskip("aiohttp")
    uvloop = pytest.importorskip("uvloop")
    owners = [(socket, "getaddrinfo"), (aiohttp.ClientSession, "__init__"),
              (uvloop.Loop, "getaddrinfo"), (uvloop.Loop, "create_connection")]  # fmt: skip
    before = [inspect.getattr_static(owner, name) for owner, name in owners]
    rasp.protect(rasp.Config())
    try:
        patched = [inspect.getattr_static(owner, name) for owner, name in owners]
        assert all(now is not then for now, then in zip(patched, before, strict=True))
        assert "getaddrinfo" in vars(uvloop.Loop)  # on the Python subclass, not the C type
    finally:
        rasp.unprotect()
    assert [inspect.getattr_static(owner, name) for owner, name in owners] == before
    assert "getaddrinfo" not in vars(uvloop.Loop)
