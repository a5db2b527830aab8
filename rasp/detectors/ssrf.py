"""Server-side request forgery: did a user input choose where an outbound request goes, and
does that place lie inside?

A request is an attack when both hold:

1. the host came from the user input (:func:`contributes`): the input holds the whole host
   at host boundaries (as sent, percent-decoded once, or NFKC-folded as IDNA does), spells
   the same IP address another way, or its leading domain is the tail of the host (the app
   built ``api.{input}``);
2. the host points inside (:func:`classify`): judged on the addresses it resolved to when
   the caller has them (at connect time, so DNS rebinding and multi-answer records are
   caught: one internal answer is enough), else on the host itself when it is an IP literal
   in any spelling a resolver accepts, or a name that never reaches DNS (``localhost``,
   the cloud metadata names).

A plain DNS name without its addresses cannot be judged and passes; the runtime guard judges
it again with getaddrinfo's answer. Everything here is string parsing: no DNS, no I/O.
"""

from __future__ import annotations

import functools
import re
import socket
import unicodedata
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any, TypeAlias

from rasp.detectors import AttackKind, Finding, as_text

__all__ = [
    "LOOPBACK_NAMES", "MAX_REMAP", "METADATA_ADDRESSES", "METADATA_HOSTS", "REASONS", "classify",
    "classify_host", "contributes", "detect", "fold", "host_span", "is_metadata", "parse_host",
    "parse_ip_literal",
]  # fmt: skip

Address: TypeAlias = IPv4Address | IPv6Address
AddressLike: TypeAlias = str | bytes | IPv4Address | IPv6Address

# Cloud instance metadata and credential endpoints: one request there can leak the
# machine's credentials, so the runtime guard blocks them even without a user input.
METADATA_ADDRESSES: frozenset[Address] = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS Pod Identity agent
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity agent over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy endpoint)
        "168.63.129.16",  # Azure WireServer: a public address only the host node answers
    )
)
# GCE's and EC2's search domains make the short names resolve too.
METADATA_HOSTS = frozenset(
    ("metadata.google.internal", "metadata.goog", "metadata", "instance-data",
     "instance-data.ec2.internal")
)  # fmt: skip
# Names that resolve to loopback without DNS: RFC 6761 reserves ``localhost`` and every
# name under it; the rest are in the /etc/hosts of common distributions.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

REASONS = {
    "metadata": "points at a cloud metadata address",
    "loopback": "points at a loopback address",
    "unspecified": "points at an unspecified address",
    "private": "points at a private address",
    "link-local": "points at a link-local address",
    "carrier-grade NAT": "points at a carrier-grade NAT address",
    "unique-local": "points at a unique-local address",
    "multicast": "points at a multicast address",
    "reserved": "points at a reserved address",
}


def _table(*entries: tuple[str, str]) -> tuple[tuple[int, int, str], ...]:
    networks = ((ip_network(network), category) for network, category in entries)
    return tuple((int(n.network_address), int(n.netmask), c) for n, c in networks)


# Ranges are internal when the public internet cannot route them: only something on the
# inside can answer there. First match wins; metadata addresses are checked before these.
_IPV4_TABLE = _table(
    ("0.0.0.0/8", "unspecified"),  # "this network": Linux connects 0.0.0.0 to the local host
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"), ("172.16.0.0/12", "private"), ("192.168.0.0/16", "private"),
    ("169.254.0.0/16", "link-local"),
    ("100.64.0.0/10", "carrier-grade NAT"),  # clouds and VPNs (Tailscale) number hosts here
    ("224.0.0.0/4", "multicast"),  # reaches the LAN over UDP (SSDP, mDNS)
    # IETF protocol assignments, documentation, benchmarking (proxies' fake-IP ranges), the
    # old class E (some clouds number pods from it) and broadcast: never routed publicly.
    ("192.0.0.0/24", "reserved"), ("192.0.2.0/24", "reserved"), ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "reserved"), ("203.0.113.0/24", "reserved"),
    ("240.0.0.0/4", "reserved"),
)  # fmt: skip
_IPV6_TABLE = _table(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("fc00::/7", "unique-local"),
    ("fec0::/10", "private"),  # deprecated site-local: IPv6's private range of old
    ("ff00::/8", "multicast"),
    # Discard-only, benchmarking, ORCHID, documentation (twice).
    ("100::/64", "reserved"), ("2001:2::/48", "reserved"), ("2001:10::/28", "reserved"),
    ("2001:db8::/32", "reserved"), ("3fff::/20", "reserved"),
)  # fmt: skip
_NAT64 = int(IPv6Address("64:ff9b::")) >> 32
_NAT64_LOCAL = int(IPv6Address("64:ff9b:1::")) >> 80

_IPV4_TEXT = re.compile(r"[0-9a-fx.]+")  # what inet_aton parses, lowercased, nothing else
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-\t\r\n]*:")
_SLASHES = re.compile(r"[\t\r\n]*/[\t\r\n]*/")
_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_HEAD = re.compile(r"[\w.-]*")
_C0_OR_SPACE = "".join(map(chr, range(33)))  # urlsplit strips these from the front
_UNSAFE = str.maketrans("", "", "\t\r\n")  # ... and removes these everywhere
_MAX_NAME = 253  # DNS's limit on a name


def detect(
    url: str | bytes, user_input: str, *, resolved_ips: Iterable[AddressLike] | None = None
) -> Finding | None:
    """A finding when the host of ``url`` came from ``user_input`` and points inside.

    ``url`` is a URL, a scheme-relative ``//host/x`` or a bare ``host[:port]``. The host is
    judged on ``resolved_ips`` when given (any internal one is enough), else on the host
    itself. The finding's span is the host's place in ``url``. Never raises.
    """
    text, value = as_text(url), as_text(user_input)
    if not text or not value:
        return None
    located = _locate(text)
    hosts = [located] if located else []
    if "\\" in text:
        # WHATWG parsers and urllib3 end the authority at a backslash; urlsplit does not.
        other = _locate(text.replace("\\", "/"))
        if other and other != located:
            hosts.append(other)
    addresses = _addresses(resolved_ips)
    for host, start, end in hosts:
        if not contributes(host, value):
            continue
        category = _worst(addresses) if addresses else classify_host(host)
        if category is not None:
            return Finding(AttackKind.SSRF, REASONS[category], start, end, text[start:end])
    return None


def contributes(host: str, user_input: str) -> bool:
    """Did ``user_input`` supply ``host``? Case-insensitive; see the module docstring.

    A one-label name (``db``, ``api``) counts only as ``localhost`` or with URL context in
    the input (``//`` or ``@`` before it, ``/`` or ``:port`` after it): apps call their own
    one-label services from config while form values like ``tab=api`` coincide. There is
    no minimum length: ``0`` is a real spelling of 0.0.0.0, and numbers are no service's
    name, so an IP literal needs no context.
    """
    name, text = _normalize(as_text(host)), as_text(user_input)
    if not name or not text:
        return False
    address = parse_ip_literal(name)
    if address is None and len(name) > _MAX_NAME:
        return False  # no resolver takes so long a name
    v6 = ":" in name
    one_label = address is None and not v6 and "." not in name and name != "localhost"
    for form in _forms(text):
        if _occurs(name, form, v6, one_label):
            return True
        if address is not None:
            # The same address spelled another way (a client normalized ``0x7f.1``).
            found = parse_host(form.strip())
            if found and parse_ip_literal(found) == address:
                return True
        elif not one_label and _ends_with_head(name, form):
            return True
    return False


def parse_host(url: str) -> str | None:
    """The host a client would connect to, lowercased, as ``urlsplit(url).hostname`` finds
    it; a string without ``//`` is read as a bare ``[user@]host[:port]``."""
    text = as_text(url)
    located = _locate(text) if text else None
    return located[0] if located else None


def host_span(url: str) -> tuple[str, int, int] | None:
    """The host :func:`parse_host` finds in ``url`` (lowercased), with its start and end
    in ``url``."""
    return _locate(url) if url else None


def classify(address: AddressLike) -> str | None:
    """The internal category of an address in any spelling, or ``None`` when public."""
    ip = parse_ip_literal(address)
    if ip is None:
        return None
    if isinstance(ip, IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    if ip in METADATA_ADDRESSES:
        return "metadata"
    value = int(ip)
    for network, mask, category in _IPV4_TABLE if ip.version == 4 else _IPV6_TABLE:
        if value & mask == network:
            return category
    return None


def classify_host(host: str) -> str | None:
    """The internal category of a host judged without DNS: an IP literal in any spelling,
    ``localhost`` and the names under it, or a cloud metadata name."""
    name = _normalize(as_text(host))
    if not name:
        return None
    spellings = [name]
    if "%" in name and ":" not in name:
        spellings.append(_normalize(_percent_decode(name)))
    if not name.isascii():
        # IDNA folds full-width digits and circled letters: "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ" is localhost.
        spellings.append(_normalize(unicodedata.normalize("NFKC", name).replace("。", ".")))
    for spelling in spellings:
        if parse_ip_literal(spelling) is not None:
            return classify(spelling)
        if spelling in LOOPBACK_NAMES or spelling.endswith(".localhost"):
            return "loopback"
        if spelling in METADATA_HOSTS:
            return "metadata"
    return None


def parse_ip_literal(host: object) -> Address | None:
    """The address an IP literal names, in any spelling the resolver accepts (glibc's
    ``inet_aton``: ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``), IPv6 with or
    without brackets and zone; ``None`` for anything else."""
    if isinstance(host, (IPv4Address, IPv6Address)):
        return host
    text = _normalize(as_text(host))
    if not text:
        return None
    if ":" in text:
        try:
            return IPv6Address(text) if len(text) <= 45 else None
        except ValueError:
            return None
    # inet_aton would also take "1.2.3.4 junk"; the resolver does not.
    if not _IPV4_TEXT.fullmatch(text):
        return None
    try:
        return IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def is_metadata(host: str, resolved_ips: Iterable[AddressLike] | None = None) -> bool:
    """Does ``host`` reach a cloud metadata endpoint? Judged on ``resolved_ips`` when given
    (a compose service named ``metadata`` resolves elsewhere), else on the host."""
    addresses = _addresses(resolved_ips)
    if addresses:
        return any(classify(a) == "metadata" for a in addresses)
    return classify_host(host) == "metadata"


def _normalize(host: str | None) -> str:
    """Lowercase, without brackets, IPv6 zone or trailing dots: how a resolver sees it."""
    if not host:
        return ""
    name = host.strip().strip("[]")
    if ":" in name:
        name = name.partition("%")[0]
    if not name.isascii():
        name = fold(name)
    return name.rstrip(".").lower()


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address a translation or tunnel form carries: the packet goes there."""
    value = int(ip)
    high = value >> 32
    if high in (0xFFFF, 0xFFFF0000, _NAT64) or value >> 80 == _NAT64_LOCAL:
        # Mapped, SIIT-translated, NAT64 well-known and local-use (RFC 8215, as /96).
        return IPv4Address(value & 0xFFFFFFFF)
    if high == 0 and value > 1:
        return IPv4Address(value)  # deprecated IPv4-compatible ::a.b.c.d
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client; the relay delivers there
    return None


def _addresses(resolved: object) -> list[Address]:
    if resolved is None:
        return []
    if isinstance(resolved, (str, bytes, bytearray, IPv4Address, IPv6Address)):
        resolved = [resolved]
    if not isinstance(resolved, Iterable):
        return []
    return [ip for ip in map(parse_ip_literal, resolved) if ip is not None]


def _worst(addresses: list[Address]) -> str | None:
    found = None
    for address in addresses:
        category = classify(address)
        if category == "metadata":
            return category
        found = found or category
    return found


def _forms(text: str) -> list[str]:
    """The input lowercased, then as an app or client may have turned it into the host."""
    lowered = text.lower()
    forms = [lowered]
    if "%" in lowered:
        decoded = _percent_decode(lowered).lower()
        if decoded != lowered:
            forms.append(decoded)
    if not lowered.isascii():
        for form in list(forms):
            folded = fold(form)
            if folded not in forms:
                forms.append(folded)
        if len(lowered) > MAX_REMAP:
            # Too long to remap whole: the host it names, remapped alone, as a whole input.
            host = parse_host(lowered.strip())
            if host and not host.isascii():
                forms.append(fold(host))
    return forms


def fold(text: str) -> str:
    """``text`` as IDNA (UTS 46) maps a host name before it is resolved: compatibility
    forms folded (fullwidth letters and digits, circled ``①``), the ideographic and
    fullwidth full stops made dots, lowercased. httpx, aiohttp and ``str.encode("idna")``
    turn ``127。0。0。1`` into ``127.0.0.1`` this way. NFKC does most of it at C speed; the
    ``idna`` package's table (what yarl and httpx use, and newer than this Python's
    Unicode data) maps what is left of a text up to ``MAX_REMAP`` characters."""
    folded = unicodedata.normalize("NFKC", text).translate(_DOTS).lower()
    if folded.isascii() or len(folded) > MAX_REMAP:
        return folded
    if len(folded) <= _CACHED_REMAP_LENGTH:
        return _cached_remap(folded)  # the table walk costs ~20 µs; names and labels repeat
    return _remap(folded)


def _remap(folded: str) -> str:
    remap = _uts46_remap()
    if remap is None:
        return folded
    try:
        return str(remap(folded, std3_rules=False, transitional=False)).translate(_DOTS).lower()
    except Exception:  # a code point IDNA disallows: the clients refuse such a host
        return folded


_CACHED_REMAP_LENGTH = 256
_cached_remap = functools.lru_cache(maxsize=2048)(_remap)

MAX_REMAP = 1024
"""Longer texts are folded by NFKC alone (a host is at most 253 characters; a long URL's
host is folded on its own, see :func:`contributes`)."""


@functools.cache
def _uts46_remap() -> Any:
    try:
        from idna import uts46_remap
    except ImportError:  # requests, httpx and yarl depend on it; without them, NFKC only
        return None
    return uts46_remap


_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


@functools.lru_cache(maxsize=1024)
def _bounded(name: str, v6: bool, one_label: bool) -> re.Pattern[str]:
    """Where the input uses ``name`` as a host: the whole input (``127.0.0.1``,
    ``127.0.0.1:8080``), or in a URL or authority (after ``//``, ``@``, ``[`` or a
    backslash), followed by its end or a port, path, query or fragment. A host mentioned in
    prose (``"127.0.0.1 is my favourite address"``) is not a host the user chose. A
    one-label name needs URL context on one side at least: ``//`` or ``@`` before, ``/`` or
    ``:port`` after.

    Lookarounds only, so overlapping occurrences are all tried; the literal is compared
    only at the start or after one of the four leads, so a search stays linear.
    """
    lead = r"(?:^|(?<=//)|(?<=@)|(?<=\[)|(?<=\\))"
    tail = r"(?:$|[\]%/?#\\])" if v6 else r"(?:$|[:/?#\\])"
    literal = re.escape(name)
    if not one_label:
        return re.compile(rf"{lead}(?={literal}\.?{tail})")
    return re.compile(
        rf"(?:(?<=//)|(?<=@))(?={literal}\.?{tail})|{lead}(?={literal}\.?(?:/|:[0-9]))"
    )


def _occurs(name: str, text: str, v6: bool, one_label: bool) -> bool:
    # A name longer than any DNS name is matched by its address instead (see contributes).
    if len(name) > _MAX_NAME or name not in text:
        return False
    return _bounded(name, v6, one_label).search(text.strip()) is not None


def _ends_with_head(name: str, text: str) -> bool:
    """The app appended the input to its own prefix (``api.{input}``): the host ends with
    the input's leading domain, which has two labels at least (the user chose a domain)."""
    match = _HEAD.match(text.strip(), 0, len(name) + 2)
    head = match.group().strip(".") if match else ""
    if "." not in head or len(head) > len(name) or not name.endswith(head):
        return False
    return len(head) == len(name) or name[-len(head) - 1] == "."


def _locate(url: str) -> tuple[str, int, int] | None:
    """The host of ``url`` (lowercased) and its span, as ``urlsplit`` finds it. urlsplit
    drops tabs and line breaks first; they are skipped here instead, so the span stays in
    ``url``: none of them is a delimiter, so the delimiters found are the same."""
    begin = len(url) - len(url.lstrip(_C0_OR_SPACE))
    scheme = _SCHEME.match(url, begin)
    after_scheme = scheme.end() if scheme else begin
    slashes = _SLASHES.match(url, after_scheme)
    if slashes:
        begin = slashes.end()
    stop = len(url) if slashes else len(url.rstrip())
    for delimiter in "/?#":
        found = url.find(delimiter, begin, stop)
        if found >= 0:
            stop = found
    at = url.rfind("@", begin, stop)
    if at >= 0:
        begin = at + 1  # the last "@" ends the userinfo, as in urlsplit
    bracket = url.find("[", begin, stop)
    if bracket >= 0:
        start = bracket + 1
        close = url.find("]", start, stop)
        end = close if close >= 0 else stop
    elif not slashes and url.count(":", begin, stop) >= 2:
        start, end = begin, stop  # a bare IPv6 address, as getaddrinfo receives one
    else:
        start = begin
        colon = url.find(":", begin, stop)
        end = colon if colon >= 0 else stop
    host = url[start:end]
    if "\t" in host or "\r" in host or "\n" in host:
        host = host.translate(_UNSAFE)
    host = host.lower()
    return (host, start, end) if host else None


def _percent_decode(text: str) -> str:
    """``unquote`` without its cost on a run of stray ``%`` (it splits at every one)."""
    return _ESCAPES.sub(_decode_escapes, text)


def _decode_escapes(match: re.Match[str]) -> str:
    return bytes.fromhex(match.group().replace("%", "")).decode("utf-8", "replace")
