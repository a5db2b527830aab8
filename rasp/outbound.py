"""What the guard knows about outbound destinations, beyond the pure SSRF detector.

The request's inputs indexed once for host lookups (:class:`HostIndex`), the URLs the app
handed its HTTP clients for the calls underway (:data:`REQUESTED`) and where an input lies
in them (:func:`requested_path`, :func:`placed_in`), the operator's allowlist
(:class:`Allowlist`), and the cloud-metadata rule's cheap first test and its exception for
cloud SDKs reading their credentials.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import sys
from contextvars import ContextVar
from types import FrameType
from urllib.parse import unquote

from rasp.context import UserInput
from rasp.detectors import ssrf as ssrf_detector
from rasp.detectors.ssrf import Address

__all__ = ["CREDENTIAL_PROVIDERS", "METADATA_REASON", "REQUESTED", "Allowlist", "HostIndex",
           "called_by", "maybe_metadata", "placed_by_app", "placed_in",
           "requested_path"]  # fmt: skip

REQUESTED: ContextVar[tuple[str, ...]] = ContextVar("rasp_requested_urls", default=())
"""The URLs the app handed its HTTP clients for the calls underway in this thread or task,
outermost first, as the app wrote them (a client below that only has a path rebuilds the
URL from its connection's host and port). The client sinks push one around each call."""


def maybe_metadata(host: str, addresses: list[str]) -> bool:
    """A cheap superset of :func:`ssrf_detector.is_metadata` for resolver answers, which
    come in canonical form: the exact metadata addresses, IPv6 forms that may carry one,
    the metadata names."""
    for address in addresses:
        if address in _METADATA_TEXT or (
            ":" in address and address != "::1" and address.startswith(_EMBEDDING)
        ):
            return True
    return host.lower().rstrip(".") in ssrf_detector.METADATA_HOSTS or not addresses


_METADATA_TEXT = frozenset(str(address) for address in ssrf_detector.METADATA_ADDRESSES)
# IPv4-mapped and -compatible, NAT64, 6to4 and Teredo forms carry an IPv4 address.
_EMBEDDING = ("::ffff:", "::", "64:ff9b:", "2002:", "2001:0:", "2001::")


class HostIndex:
    """The inputs that may name a host, indexed once per request: one lowercased text to
    search at C speed, and the set of whole values for the ``api.{input}`` case."""

    __slots__ = ("_addresses", "inputs", "text", "values")

    def __init__(self, inputs: list[UserInput]) -> None:
        # Headers that name this very server or the page the user came from: apps build
        # URLs to themselves from them and proxies fill them in; they are not a URL the
        # user chose.
        self.inputs = [
            user_input
            for user_input in inputs
            if not (
                user_input.source == "header"
                and (
                    user_input.key in _SSRF_QUIET_HEADERS
                    or user_input.key.startswith("x-forwarded-")
                )
            )
        ]
        lowered = [user_input.value.lower() for user_input in self.inputs]
        decoded = [unquote(value) for value in lowered if "%" in value]
        # As a client's IDNA step may turn them into the host it resolves (127。0。0。1).
        folded = [ssrf_detector.fold(value) for value in lowered + decoded if not value.isascii()]
        for value in lowered:
            if len(value) > ssrf_detector.MAX_REMAP and not value.isascii():
                host = ssrf_detector.parse_host(value.strip())  # folded alone, see fold()
                if host and not host.isascii():
                    folded.append(ssrf_detector.fold(host))
        self.text = "\n".join(lowered + decoded + folded)
        self.values = frozenset(lowered + decoded + folded)
        self._addresses: list[tuple[UserInput, Address]] | None = None

    def candidates(self, host: str) -> list[UserInput]:
        """The inputs worth asking :func:`ssrf_detector.contributes` about ``host``."""
        name = host.lower().strip("[]").rstrip(".")
        if not name:
            return []
        if name in self.text or self._suffix_is_input(name):
            return self.inputs
        address = (name[0].isdigit() or ":" in name) and ssrf_detector.parse_ip_literal(name)
        if address:
            # The same address spelled otherwise in the input (``0x7f.1``, a client
            # normalised it): inputs naming that address, or with forms of their own
            # (escapes, other scripts) that the detector reads too.
            if self._addresses is None:
                self._addresses = [
                    (user_input, held)
                    for user_input in self.inputs
                    if (held := _address_held(user_input.value)) is not None
                ]
            return [
                user_input
                for user_input, held in self._addresses
                if held == address or "%" in user_input.value or not user_input.value.isascii()
            ]
        return []

    def _suffix_is_input(self, name: str) -> bool:
        if len(name) > _MAX_HOST:
            return False
        # At label boundaries, keeping two labels at least: the user chose a domain.
        values = self.values
        at = name.find(".")
        start = 0
        while at >= 0:
            if name[start:] in values:
                return True
            start = at + 1
            at = name.find(".", start)
        return False


def requested_path(host: str, urls: tuple[str, ...]) -> str | None:
    """What follows the authority (path, query, fragment) in the first of ``urls`` whose
    host is ``host``, or None when none is (a raw socket, a client that normalised the host
    beyond recognition: the caller judges as before).

    The first, outermost, is the URL the app wrote. The others are the clients' own: a
    layer below that rebuilt it from a host and a path (the same text), or a redirect step
    to the same server, whose host the app chose, not the user (a redirect from a server
    the user chose is judged through its target, see :func:`rasp.guard.note_redirect`)."""
    if not urls:
        return None
    name = _host_key(host)
    for url in urls:
        path = _path_after(url, name)
        if path is not None:
            return path
    return None


def placed_in(value: str, path: str | None) -> bool:
    """Did the app put ``value`` in ``path`` (the path, query and fragment of the URL it
    asked for)? Then the input's text at the host (the app's own backend at 127.0.0.1 and
    a search for ``127.0.0.1``) is the app's, or another input's.

    The path is searched as sent and percent-decoded once; the input as it is,
    percent-decoded and IDNA-folded. An occurrence counts only as a whole token (no letter
    or digit either side) and of four characters at least: ``0`` (0.0.0.0) is in many
    paths by chance. An input that made the host is also found in the path only where the
    app wrote it there too: a template that puts one input into both the host and the
    query is not judged (documented)."""
    if not path:
        return False
    lowered = value.lower()
    forms = [lowered]
    if "%" in lowered:
        forms.append(unquote(lowered))
    if not lowered.isascii():
        forms.extend([ssrf_detector.fold(form) for form in forms])
    texts = [path.lower()]
    if "%" in path:
        texts.append(unquote(texts[0]))
    return any(
        _token_in(form, text) for form in forms if len(form) >= _MIN_PLACED for text in texts
    )


def placed_by_app(user_input: UserInput, inputs: list[UserInput], path: str | None) -> bool:
    """Is ``user_input`` in ``path`` (see :func:`placed_in`) and held by no other input?

    An attacker who sends the host's text again in a parameter the app forwards in the
    query (``f"http://{host}/x?q={q}"``) would put it there too: then the occurrence does
    not show where this input went, and it is judged. ``inputs`` are the ones the SSRF check
    considers (:attr:`HostIndex.inputs`: not the request's own Host or Referer)."""
    if not placed_in(user_input.value, path):
        return False
    text = user_input.value.lower()
    for other in inputs:
        if other is not user_input:
            value = other.value.lower()
            if text in value or ("%" in value and text in unquote(value)):
                return False
    return True


_MIN_PLACED = 4
_DELIMITERS = "/?#"


def _path_after(url: str, name: str) -> str | None:
    # Clients drop tabs and line breaks (urlsplit does), so must the spans.
    if "\t" in url or "\r" in url or "\n" in url:
        url = url.translate(_UNSAFE)
    url = url.lstrip(_C0_OR_SPACE)
    spans = [ssrf_detector.host_span(url)]
    if "\\" in url:  # WHATWG parsers and urllib3 end the authority at a backslash
        spans.append(ssrf_detector.host_span(url.replace("\\", "/")))
    found = [span for span in spans if span is not None]
    if not any(_host_key(span[0]) == name or _same_address(span[0], name) for span in found):
        return None
    # After every reading's host: the path never holds a host a client may connect to.
    end = max(span[2] for span in found)
    cut = len(url)
    for delimiter in _DELIMITERS:
        at = url.find(delimiter, end, cut)
        if at >= 0:
            cut = at
    return url[cut:]


def _host_key(host: str) -> str:
    name = host.strip().strip("[]").partition("%")[0].rstrip(".").lower()
    return name if name.isascii() else ssrf_detector.fold(name)


def _same_address(located: str, name: str) -> bool:
    if not (name[:1].isdigit() or ":" in name):
        return False
    address = ssrf_detector.parse_ip_literal(name)
    return address is not None and ssrf_detector.parse_ip_literal(_host_key(located)) == address


def _token_in(form: str, text: str) -> bool:
    """``form`` occurs in ``text`` with no letter or digit right before or after it. Only
    the first occurrences are tried: text made of one repeated run would take quadratic
    time, and not finding the input only means it is judged."""
    at = text.find(form)
    for _ in range(_MAX_TRIED):
        if at < 0:
            return False
        end = at + len(form)
        before = at == 0 or not text[at - 1].isalnum()
        if before and (end == len(text) or not text[end].isalnum()):
            return True
        at = text.find(form, at + 1)
    return False


_MAX_TRIED = 16


_UNSAFE = str.maketrans("", "", "\t\r\n")
_C0_OR_SPACE = "".join(map(chr, range(33)))


def _address_held(value: str) -> Address | None:
    """The IP address ``value`` names as a host (in any spelling ``parse_ip_literal``
    reads), or ``None``. Values repeat from request to request (keys, headers): short ones
    are cached."""
    # Every ASCII spelling of an address has a digit (inet_aton forms) or a colon (IPv6):
    # most text is turned away here at C speed. Other scripts may fold to digits.
    if _MAYBE_ADDRESS.search(value) is None:
        return None
    if len(value) > _CACHED_VALUE_LENGTH:
        return _parse_address(value)
    return _cached_parse_address(value)


def _parse_address(value: str) -> Address | None:
    host = ssrf_detector.parse_host(value.strip())
    if host is None:
        return None
    if host.isascii() and _NOT_ADDRESS_TEXT.search(host.strip().partition("%")[0]) is not None:
        return None  # a name, not an address: the parse below would say so, slower
    return ssrf_detector.parse_ip_literal(host)


_CACHED_VALUE_LENGTH = 256
_cached_parse_address = functools.lru_cache(maxsize=4096)(_parse_address)
# After parse_host: what no spelling of an address holds (brackets, zone and a trailing
# dot are stripped by the parse; anything else outside these makes it a name).
_NOT_ADDRESS_TEXT = re.compile(r"[^0-9a-fx.:\[\]]")


_MAX_HOST = 255
_MAYBE_ADDRESS = re.compile(r"[0-9:]|[^\x00-\x7f]")
_SSRF_QUIET_HEADERS = frozenset(
    {
        "host", "origin", "referer", "forwarded", "via",
        # The client's address as a proxy or CDN saw it: an internal one is routine.
        "x-real-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip", "fastly-client-ip",
        "x-cluster-client-ip",
    }
)  # fmt: skip
METADATA_REASON = "reaches a cloud metadata address"
# Cloud SDKs read their credentials from the metadata service, within requests too.
CREDENTIAL_PROVIDERS = (
    "botocore", "boto3", "aiobotocore", "google.auth", "google.cloud", "azure.identity",
    "azure.core", "ibm_cloud_sdk_core", "oci",
)  # fmt: skip


class Allowlist:
    __slots__ = ("hosts", "networks", "source")

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.source = entries
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.hosts: list[str] = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry))
            except ValueError:
                self.hosts.append(entry)

    def permits(self, host: str, addresses: list[str]) -> bool:
        name = host.lower().rstrip(".")
        for allowed in self.hosts:
            if name == allowed or (allowed.startswith(".") and name.endswith(allowed)):
                return True
            if allowed.startswith(".") and name == allowed[1:]:
                return True
        if not self.networks or not addresses:
            return False
        return all(_in_networks(address, self.networks) for address in addresses)


def _in_networks(
    address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in network for network in networks)


def called_by(packages: tuple[str, ...]) -> bool:
    nested = tuple(package + "." for package in packages)
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module in packages or module.startswith(nested):
            return True
        frame = frame.f_back
    return False
