"""Where the input lands in the URL the app asked for: honest values in the path or query of
a call to the app's own backend pass; inputs that make the host are still blocked.

The app's backend is a real server on 127.0.0.1 that records every hit; every client is the
real one, called while a request whose inputs are known is served.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest
from loopback import BLOCKED, HTTP_CLIENTS, loopback_server
from serving import serving

import rasp
from rasp import outbound

_BLOCKED = BLOCKED


class Backend(NamedTuple):
    base: str
    port: int
    hits: list[str]


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    def redirect(path: str) -> tuple[str, str] | None:
        # The app's own backend sends it elsewhere on itself.
        return ("Location", "/landing") if path.startswith("/bounce") else None

    with loopback_server(redirect=redirect) as (base, hits):
        yield Backend(base, int(base.rsplit(":", 1)[1]), hits)


@pytest.fixture
def agent() -> Iterator[rasp.Config]:
    config = rasp.protect(rasp.Config())
    yield config
    rasp.unprotect()


CLIENTS = HTTP_CLIENTS
FOLLOWING = ["urllib", "requests", "urllib3", "httpx", "httpx-async", "aiohttp"]
# Values that name the backend's own address, as the peer corpus' honest ones do.
OWN_ADDRESS = ["127.0.0.1", "http://127.0.0.1:8080/admin", "0x7f000001", "2130706433"]


def _search(backend: Backend, value: str) -> str:
    return f"{backend.base}/search?q={urllib.parse.quote(value)}"


def _item(backend: Backend, value: str) -> str:
    return f"{backend.base}/items/{urllib.parse.quote(value, safe='')}"


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("value", OWN_ADDRESS)
@pytest.mark.parametrize("template", [_search, _item])
def test_a_value_in_the_path_or_query_of_the_apps_own_call_passes(
    agent: rasp.Config,
    backend: Backend,
    client: str,
    value: str,
    template: Callable[[Backend, str], str],
) -> None:
    url = template(backend, value)
    before = len(backend.hits)
    with serving(v=value) as context:
        assert CLIENTS[client](url) == b"ok"
    assert context.blocked is None and not context.incidents
    assert len(backend.hits) == before + 1


@pytest.mark.parametrize("client", FOLLOWING)
def test_a_redirect_of_the_apps_own_call_passes(
    agent: rasp.Config, backend: Backend, client: str
) -> None:
    # The backend redirects to itself: its server was not chosen by the input in the query.
    url = f"{backend.base}/bounce?q=127.0.0.1"
    before = len(backend.hits)
    with serving(v="127.0.0.1") as context:
        assert CLIENTS[client](url) == b"ok"
    assert context.blocked is None
    assert backend.hits[before:] == ["/landing"]


def _attack(backend: Backend, client: str, url: str, **inputs: str) -> None:
    before = len(backend.hits)
    with serving(**inputs) as context, pytest.raises(_BLOCKED):
        CLIENTS[client](url)
    assert context.blocked is not None
    assert context.blocked.kind.value == "ssrf"
    assert len(backend.hits) == before


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("spelling", ["127.0.0.1", "2130706433", "localhost"])
def test_an_input_that_makes_the_host_is_blocked(
    agent: rasp.Config, backend: Backend, client: str, spelling: str
) -> None:
    if client == "aiohttp" and spelling == "2130706433":
        pytest.skip("aiohttp refuses the spelling itself (not a canonical IPv4 address)")
    value = f"{spelling}:{backend.port}"
    _attack(backend, client, f"http://{value}/x", v=value)


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("query", ["", "?q=127.0.0.1", "?q=http://127.0.0.1"])
def test_a_whole_url_from_the_user_is_blocked(
    agent: rasp.Config, backend: Backend, client: str, query: str
) -> None:
    # The user's URL may spell its own host again in its query: it still made the host.
    value = f"{backend.base}/x{query}"
    _attack(backend, client, value, v=value)


@pytest.mark.parametrize("client", list(CLIENTS))
def test_the_host_input_is_judged_though_another_input_names_it_in_the_query(
    agent: rasp.Config, backend: Backend, client: str
) -> None:
    host = f"127.0.0.1:{backend.port}"
    url = f"http://{host}/x?q={urllib.parse.quote('127.0.0.1')}"
    _attack(backend, client, url, host=host, q="127.0.0.1")


def test_userinfo_the_client_drops_is_still_blocked(agent: rasp.Config, backend: Backend) -> None:
    # http.client only gets the host and the path: the user's URL is not in what it asked
    # for, so it is judged as before.
    value = f"http://someone@127.0.0.1:{backend.port}/x"
    _attack(backend, "http.client", value, v=value)


def test_an_address_the_app_converts_is_still_blocked(agent: rasp.Config, backend: Backend) -> None:
    # The input is nowhere in the URL: nothing says the app put it elsewhere.
    value = "2130706433"
    url = f"http://{ipaddress.ip_address(int(value))}:{backend.port}/x"
    _attack(backend, "urllib", url, v=value)


@pytest.mark.xfail(strict=True, reason="documented gap: one input in the host and the query")
def test_one_input_in_both_host_and_query(agent: rasp.Config, backend: Backend) -> None:
    value = f"127.0.0.1:{backend.port}"
    _attack(backend, "urllib", f"http://{value}/x?q={value}", v=value)


def test_the_url_is_kept_for_the_call_only(agent: rasp.Config, backend: Backend) -> None:
    assert CLIENTS["urllib"](f"{backend.base}/startup") == b"ok"  # outside a request: nothing kept
    assert outbound.REQUESTED.get() == ()
    with serving(v="x"):
        assert CLIENTS["urllib"](f"{backend.base}/during") == b"ok"
        assert outbound.REQUESTED.get() == ()


@pytest.mark.parametrize(
    ("value", "path", "placed"),
    [
        ("127.0.0.1", "/search?q=127.0.0.1", True),
        ("http://127.0.0.1:8080/admin", "/search?q=http%3A//127.0.0.1%3A8080/admin", True),
        ("127.0.0.1", "/search?q=10127.0.0.15", False),  # not a whole token
        ("0", "/api/v2/0", False),  # too short to tell from the app's own text
        ("127.0.0.1", "", False),
    ],
)
def test_placed_in(value: str, path: str, placed: bool) -> None:
    assert outbound.placed_in(value, path) is placed


@pytest.mark.parametrize(
    ("host", "url", "path"),
    [
        ("127.0.0.1", "http://127.0.0.1:80/search?q=1", "/search?q=1"),
        ("127.0.0.1", "http://127.0.0.1", ""),
        ("127.0.0.1", "http://a@127.0.0.1:80?q=1#f", "?q=1#f"),
        ("127.0.0.1", "http://example.com/?q=127.0.0.1", None),
        ("::1", "http://[::1]:80/x", "/x"),
        ("127.0.0.1", "http://0x7f.1/x", "/x"),  # the same address, spelled otherwise
        ("127.0.0.1", "http://127.0.0.1:80\\@example.com/x", "/x"),  # after both readings
        ("127.0.0.1", "http:/\t/127.0.0.1/x", "/x"),  # urlsplit drops the tab
    ],
)
def test_requested_path(host: str, url: str, path: str | None) -> None:
    assert outbound.requested_path(host, (url,)) == path


def test_the_url_the_app_wrote_decides() -> None:
    # Outermost first: a redirect step to the same server below it does not count.
    urls = ("http://127.0.0.1:80/bounce?q=127.0.0.1", "http://127.0.0.1:80/landing")
    assert outbound.requested_path("127.0.0.1", urls) == "/bounce?q=127.0.0.1"
    urls = ("http://example.com/?q=127.0.0.1", "http://127.0.0.1:80/landing")
    assert outbound.requested_path("127.0.0.1", urls) == "/landing"


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("copy", ["{host}", "see {host} please"])
def test_the_host_input_is_judged_though_the_user_copies_it_into_the_query(
    agent: rasp.Config, backend: Backend, client: str, copy: str
) -> None:
    # A proxy template f"http://{host}/x?q={q}": the attacker sends the host's text in q too,
    # so it shows in the query. Another input holding it explains nothing: it is judged.
    host = f"127.0.0.1:{backend.port}"
    q = copy.format(host=host)
    _attack(backend, client, f"http://{host}/x?q={urllib.parse.quote(q)}", host=host, q=q)
