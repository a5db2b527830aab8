"""Outbound connections: judged where host names become addresses.

Every HTTP client resolves the host it connects to: urllib, http.client, urllib3/requests and
httpx (sync) through ``socket.getaddrinfo``; asyncio clients (httpx async via anyio,
aiohttp, ``loop.create_connection``) through the loop's ``getaddrinfo``, which resolves in
an executor thread that does not carry the request's context, so it is judged here, in the
task, on the answer; an address literal skips resolution in asyncio (``_ipaddr_info``) and
is judged there. uvloop resolves in C: its ``getaddrinfo`` (which aiohttp and anyio call
before connecting) and the address literals its ``create_connection`` receives are judged.
Judging the resolved addresses catches every spelling of an address and DNS rebinding: the
answer judged is the answer the client connects to.

The URL asked for: the clients' entry points (urllib's opener, http.client's ``request``,
requests' session, urllib3's pool manager and pools, httpx's ``send``, aiohttp's request)
keep the URL the app gave them in :data:`rasp.outbound.REQUESTED` for the time of the call,
so the resolution inside it is judged knowing where each input landed: one the app put in
the path or query did not choose the host (:func:`rasp.outbound.placed_in`).

Redirects: a server the user chose can answer 3xx to an internal address. The clients'
redirect steps (aiohttp's: a trace config added to every session) report each target
(:func:`rasp.guard.note_redirect`), which then counts as user input for the connection that
follows.
"""

from __future__ import annotations

import inspect
import ipaddress
import socket
from typing import Any
from urllib.parse import urljoin

from rasp.context import current
from rasp.guard import Sink, check_address, contained, note_redirect
from rasp.outbound import REQUESTED
from rasp.sinks import Patch
from rasp.sinks._wrapper import Guarded

__all__ = ["PATCHES"]

_SKIP = (
    "socket", "asyncio", "urllib", "http", "urllib3", "requests", "httpx", "httpcore",
    "anyio", "aiohttp", "aiohappyeyeballs", "h11", "ssl", "concurrent",
)  # fmt: skip
_SOCKET = Sink("socket.getaddrinfo", None, _SKIP)
_GETHOSTBYNAME = Sink("socket.gethostbyname", None, _SKIP)
_LOOP = Sink("asyncio.getaddrinfo", None, _SKIP)


def _addresses(infos: Any) -> list[str]:
    # One entry per socket type and address: each address once, in the resolver's order.
    return list(dict.fromkeys(str(info[4][0]) for info in infos if len(info) > 4 and info[4]))


def _getaddrinfo(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    infos = wrapped(*args, **kwargs)
    context = current()
    if context is not None:
        host = args[0] if args else kwargs.get("host")
        addresses = contained("addresses", _addresses, infos) or []
        check_address(context, host, addresses, _SOCKET)
    return infos


def _gethostbyname(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    address = wrapped(*args, **kwargs)
    context = current()
    if context is not None:
        check_address(context, args[0] if args else None, [str(address)], _GETHOSTBYNAME)
    return address


async def _loop_getaddrinfo(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    context = current()  # the task's context: the executor thread has none
    infos = await wrapped(*args, **kwargs)
    if context is not None:
        host = args[0] if args else kwargs.get("host")
        addresses = contained("addresses", _addresses, infos) or []
        check_address(context, host, addresses, _LOOP)
    return infos


def _ipaddr_info(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    info = wrapped(*args, **kwargs)
    if info is not None:
        context = current()
        if context is not None:
            host = args[0] if args else kwargs.get("host")
            check_address(context, host, contained("addresses", _addresses, [info]) or [], _LOOP)
    return info


# The URL asked for, kept for the time of the client's call. Outside a request: one lookup.


def _requesting(url_of: Any) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if current() is None:
            return wrapped(*args, **kwargs)
        url = contained("requested", url_of, instance, args, kwargs)
        if not url:
            return wrapped(*args, **kwargs)
        token = REQUESTED.set((*REQUESTED.get(), url))
        try:
            return wrapped(*args, **kwargs)
        finally:
            REQUESTED.reset(token)

    return lambda original: Guarded(original, wrapper)


def _requesting_async(url_of: Any) -> Any:
    async def wrapper(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if current() is None:
            return await wrapped(*args, **kwargs)
        url = contained("requested", url_of, instance, args, kwargs)
        if not url:
            return await wrapped(*args, **kwargs)
        # Tasks the client starts (happy eyeballs, aiohttp's resolver) copy this context.
        token = REQUESTED.set((*REQUESTED.get(), url))
        try:
            return await wrapped(*args, **kwargs)
        finally:
            REQUESTED.reset(token)

    return lambda original: Guarded(original, wrapper)


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
    return args[position] if len(args) > position else kwargs.get(name)


def _text(url: Any) -> str | None:
    if isinstance(url, str):
        return url
    if isinstance(url, (bytes, bytearray)):
        return bytes(url).decode("latin-1")
    return None


def _on(host: Any, port: Any, url: Any, scheme: str = "http") -> str | None:
    # A connection or pool that knows the server and gets a path: the URL it will request.
    path = _text(url)
    if path is None or not path.startswith("/") or not isinstance(host, str):
        return path  # absolute (to a proxy), or nothing to go by
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{path}"


def _urllib_open(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    # OpenerDirector.open(fullurl, data=None, timeout=...): a URL or a Request
    url = _argument(args, kwargs, 0, "fullurl")
    return _text(url) if isinstance(url, str) else _text(getattr(url, "full_url", None))


def _http_client(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    # HTTPConnection.request(method, url, ...): the connection knows the host
    return _on(instance.host, instance.port, _argument(args, kwargs, 1, "url"))


def _url_argument(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    # requests' Session.request(method, url, ...), urllib3's PoolManager.urlopen(method, url)
    return _text(_argument(args, kwargs, 1, "url"))


def _urllib3_pool(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    # HTTPConnectionPool.urlopen(method, url, ...): a path, on the pool's server
    url = _argument(args, kwargs, 1, "url")
    return _on(instance.host, instance.port, url, instance.scheme)


def _httpx_send(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    # Client.send(request, ...): the URL as httpx built it (the scheme and host normalised)
    return str(_argument(args, kwargs, 0, "request").url)


def _aiohttp_request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    # ClientSession._request(method, str_or_url, ...): a str or a yarl URL
    url = _argument(args, kwargs, 1, "str_or_url")
    return url if isinstance(url, str) else str(url) if url is not None else None


# Redirect steps: (from URL, to URL) of the clients that follow redirects themselves.


def _redirect(make: Any) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        context = current()
        if context is not None and result is not None:
            pair = contained("redirect", make, instance, args, kwargs, result)
            if pair is not None:
                note_redirect(context, pair[0], pair[1])
        return result

    return lambda original: Guarded(original, wrapper)


def _urllib(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> Any:
    # HTTPRedirectHandler.redirect_request(req, fp, code, msg, headers, newurl)
    request = args[0] if args else kwargs["req"]
    return request.full_url, result.full_url


def _requests(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> Any:
    # SessionRedirectMixin.get_redirect_target(resp) -> the Location, maybe relative
    response = args[0] if args else kwargs["resp"]
    return response.url, urljoin(response.url, result)


def _urllib3(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> Any:
    # BaseHTTPResponse.get_redirect_location() -> the Location, or False
    origin = getattr(instance, "url", None)
    pool = getattr(instance, "_pool", None)
    if not result or not origin:
        return None
    if "//" not in origin and pool is not None:
        # A pool's response knows its path only; the pool knows the server.
        origin = f"{pool.scheme}://{pool.host}:{pool.port}{origin}"
    return origin, urljoin(origin, result)


def _httpx(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> Any:
    # BaseClient._build_redirect_request(request, response) -> the next Request
    request = args[0] if args else kwargs["request"]
    return str(request.url), str(result.url)


def _aiohttp_session(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # aiohttp follows redirects inside its request loop; its tracing signals announce each
    # one. Every session gets one more trace config, ours, shared by all.
    tracer = contained("aiohttp_tracer", _aiohttp_tracer)
    if tracer is not None:
        kwargs["trace_configs"] = [*(kwargs.get("trace_configs") or ()), tracer]
    return wrapped(*args, **kwargs)


_tracer: Any = None


def _aiohttp_tracer() -> Any:
    global _tracer
    if _tracer is None:
        import aiohttp

        tracer = aiohttp.TraceConfig()
        tracer.on_request_redirect.append(_on_aiohttp_redirect)
        _tracer = tracer
    return _tracer


async def _on_aiohttp_redirect(session: Any, trace_context: Any, params: Any) -> None:
    context = current()
    if context is not None:
        pair = contained("redirect", _aiohttp_pair, params)
        if pair is not None:
            note_redirect(context, pair[0], pair[1])


def _aiohttp_pair(params: Any) -> tuple[str, str] | None:
    # TraceRequestRedirectParams(method, url, headers, response): the Location, maybe relative
    headers = params.response.headers
    location = headers.get("Location") or headers.get("URI")  # aiohttp follows either
    if not location:
        return None
    origin = str(params.url)
    return origin, urljoin(origin, location)


def _async_wrapper(original: Any) -> Any:
    if not inspect.iscoroutinefunction(original):
        raise TypeError("asyncio's loop.getaddrinfo is expected to be a coroutine function")
    return Guarded(original, _loop_getaddrinfo)


def _uvloop_wrapper(original: Any) -> Any:
    # A Cython coroutine method: awaited from the Python wrapper all the same. uvloop's own
    # create_connection resolves in C without it; aiohttp and anyio (httpx) call this first.
    return Guarded(original, _loop_getaddrinfo)


async def _uvloop_connection(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # create_connection(protocol_factory, host, port, ...): uvloop resolves in C. Clients
    # that resolved the name already (anyio, aiohttp) pass an address, judged as it is; a
    # name (asyncio.open_connection("localhost", ...)) is resolved first through the
    # loop's guarded getaddrinfo, which judges the answer. The C resolver asks the system
    # again: an answer that changed in between (rebinding) is not seen.
    context = current()
    if context is not None:
        host = args[1] if len(args) > 1 else kwargs.get("host")
        if isinstance(host, str) and host:
            if contained("literal", _is_address, host):
                check_address(context, host, [host], _LOOP)
            else:
                port = args[2] if len(args) > 2 else kwargs.get("port")
                try:
                    await instance.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                except OSError:
                    pass  # the connection attempt raises the app's own error
    return await wrapped(*args, **kwargs)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


PATCHES = (
    Patch("socket", "getaddrinfo", lambda f: Guarded(f, _getaddrinfo)),
    Patch("socket", "gethostbyname", lambda f: Guarded(f, _gethostbyname)),
    Patch("asyncio.base_events", "BaseEventLoop.getaddrinfo", _async_wrapper),
    Patch("asyncio.base_events", "_ipaddr_info", lambda f: Guarded(f, _ipaddr_info)),
    Patch("uvloop", "Loop.getaddrinfo", _uvloop_wrapper),
    Patch("uvloop", "Loop.create_connection", lambda f: Guarded(f, _uvloop_connection)),
    Patch("urllib.request", "OpenerDirector.open", _requesting(_urllib_open)),
    Patch("http.client", "HTTPConnection.request", _requesting(_http_client)),
    Patch("requests.sessions", "Session.request", _requesting(_url_argument)),
    Patch("urllib3.poolmanager", "PoolManager.urlopen", _requesting(_url_argument)),
    Patch("urllib3.connectionpool", "HTTPConnectionPool.urlopen", _requesting(_urllib3_pool)),
    Patch("httpx._client", "Client.send", _requesting(_httpx_send)),
    Patch("httpx._client", "AsyncClient.send", _requesting_async(_httpx_send)),
    Patch("aiohttp.client", "ClientSession._request", _requesting_async(_aiohttp_request)),
    Patch("urllib.request", "HTTPRedirectHandler.redirect_request", _redirect(_urllib)),
    Patch("requests.sessions", "SessionRedirectMixin.get_redirect_target", _redirect(_requests)),
    Patch("urllib3.response", "BaseHTTPResponse.get_redirect_location", _redirect(_urllib3)),
    Patch("httpx._client", "BaseClient._build_redirect_request", _redirect(_httpx)),
    Patch("aiohttp.client", "ClientSession.__init__", lambda f: Guarded(f, _aiohttp_session)),
)
