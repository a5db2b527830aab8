"""Shell injection, path traversal and SSRF over real HTTP, on gunicorn and uvicorn.

Each attack is answered 403 and never does its damage: the canary file a shell injection
would create does not exist, the secret beside the files folder is not returned, and the
internal canary server records no hit. Honest requests to the same routes are served.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .conftest import Canary, Shop


def _blocked(shop: Shop, offset: int, response: Any, kind: str, source: str) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    incident = response.headers["x-rasp-incident"]
    [alert] = [a for a in shop.alerts(offset) if a["id"] == incident]
    assert alert["kind"] == kind
    assert alert["action"] == "blocked"
    assert alert["input_source"] == source
    if kind == "ssrf" and shop.name.startswith("starlette"):
        # httpx connects in a task of anyio's own: no app frame above the check.
        assert alert["code_file"] is None or alert["code_file"].endswith("app.py")
    else:
        assert alert["code_file"].endswith("app.py")
    return alert


SHELL_ATTACKS = [
    "localhost; touch {canary}",
    "localhost && touch {canary}",
    "localhost | touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "localhost\ntouch {canary}",
    "localhost; touch${{IFS}}{canary}",
]


@pytest.mark.parametrize("payload", SHELL_ATTACKS)
def test_shell_injection_is_blocked_and_never_runs(shop: Shop, payload: str) -> None:
    canary = shop.db_path.parent / f"pwned-{secrets.token_hex(4)}"
    offset = shop.stderr_size()
    with shop.client() as client:
        response = client.get("/tools/lookup", params={"host": payload.format(canary=canary)})
    alert = _blocked(shop, offset, response, "shell_injection", "query.host")
    # uvicorn runs on uvloop where it is installed, which starts processes without Popen.
    assert alert["sink"] in ("subprocess.Popen", "uvloop.Loop.subprocess_shell")
    assert not canary.exists()


@pytest.mark.parametrize("host", ["localhost", "ip6-localhost", "shop-db.internal", "a-b.c_d"])
def test_honest_shell_input_runs(shop: Shop, host: str) -> None:
    with shop.client() as client:
        response = client.get("/tools/lookup", params={"host": host})
        safe = client.get("/tools/lookup-safe", params={"host": f"{host}; touch /tmp/x"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] in (0, 2)  # getent: found, or not found
    if host == "localhost":
        assert "127.0.0.1" in response.json()["output"] or "::1" in response.json()["output"]
    # The argument-list twin passes any text as one argument: nothing to block.
    assert safe.status_code == 200, safe.text


@pytest.fixture
def secret(shop: Shop) -> str:
    """A secret file beside the files folder, where no download may reach."""
    token = secrets.token_hex(16)
    (shop.db_path.parent / "secret.txt").write_text(token)
    return token


@pytest.mark.parametrize(
    "name",
    ["../secret.txt", "manuals/../../secret.txt", "..%2fsecret.txt", "..\\..\\secret.txt",
     "{absolute}", "report-2024.pdf/../../secret.txt"],
)  # fmt: skip
def test_traversal_is_blocked_and_the_secret_not_returned(
    shop: Shop, secret: str, name: str
) -> None:
    absolute = str(shop.db_path.parent / "secret.txt")
    offset = shop.stderr_size()
    with shop.client() as client:
        response = client.get("/download", params={"name": name.format(absolute=absolute)})
    if name == "..\\..\\secret.txt":
        # Not a separator on POSIX: the file does not exist, but the intent is judged anyway.
        assert response.status_code == 403
        return
    if name == "..%2fsecret.txt":
        # Decoded once by the framework into `..%2fsecret.txt`: a file name, not a climb.
        assert response.status_code == 404
        return
    alert = _blocked(shop, offset, response, "path_traversal", "query.name")
    assert alert["sink"] == "open"
    assert secret not in response.text


@pytest.mark.parametrize(
    ("name", "content"),
    [("report-2024.pdf", "%PDF- yearly report"), ("my..notes.txt", "notes"),
     ("manuals/lamp.txt", "lamp manual"), ("manuals/../report-2024.pdf", "%PDF- yearly report")],
)  # fmt: skip
def test_honest_file_names_are_served(shop: Shop, name: str, content: str) -> None:
    with shop.client() as client:
        response = client.get("/download", params={"name": name})
    assert response.status_code == 200, response.text
    assert response.text == content


def test_a_missing_honest_file_is_the_apps_404(shop: Shop) -> None:
    with shop.client() as client:
        assert client.get("/download", params={"name": "nothing-here.txt"}).status_code == 404


# urllib takes the user part for the host name; httpx refuses zero-padded IPv4.
CLIENT_REFUSES = {("flask", "user@127.0.0.1"), ("starlette", "0177.0.0.1")}


@pytest.mark.parametrize(
    "spelling",
    ["127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "[::1]",
     "[::ffff:127.0.0.1]", "LocalHost", "user@127.0.0.1"],
)  # fmt: skip
def test_ssrf_to_an_internal_server_is_blocked(
    shop: Shop, canary_server: Canary, spelling: str
) -> None:
    port = canary_server.url.rsplit(":", 1)[1]
    url = f"http://{spelling}:{port}/internal/{secrets.token_hex(4)}"
    before = list(canary_server.hits)
    offset = shop.stderr_size()
    with shop.client() as client:
        response = client.get("/fetch", params={"url": url})
    if (shop.name.split("-")[0], spelling) in CLIENT_REFUSES:
        # The client refuses the spelling itself: the app's own error, and never a hit.
        assert response.status_code in (500, 502)
        assert canary_server.hits == before
        return
    alert = _blocked(shop, offset, response, "ssrf", "query.url")
    assert alert["sink"] in ("socket.getaddrinfo", "asyncio.getaddrinfo")
    assert "canary: internal data" not in response.text
    assert canary_server.hits == before


def test_redirect_to_an_internal_server_is_blocked(
    shop: Shop, canary_server: Canary, partner_server: Canary
) -> None:
    # The partner (allowed) answers 302 to the internal canary: the target came from a server
    # the user chose, so it is the user's too.
    url = f"{partner_server.url}/bounce"
    before = list(canary_server.hits)
    offset = shop.stderr_size()
    with shop.client() as client:
        response = client.get("/fetch", params={"url": url})
    alert = _blocked(shop, offset, response, "ssrf", "redirect.location")
    assert alert["input_value"] == partner_server.bounce_to
    assert canary_server.hits == before


def test_honest_fetches_pass(shop: Shop, partner_server: Canary) -> None:
    with shop.client() as client:
        allowed = client.get("/fetch", params={"url": f"{partner_server.url}/feed"})
        # A public-looking host that does not resolve here: the app's own error, no block.
        unresolved = client.get("/fetch", params={"url": "http://partner.shop.invalid/feed"})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["body"] == "canary: internal data"
    assert unresolved.status_code == 502, unresolved.text
    assert "x-rasp-incident" not in unresolved.headers


def test_shop_files_are_where_the_tests_think(shop: Shop) -> None:
    assert Path(shop.db_path.parent / "files" / "report-2024.pdf").is_file()
