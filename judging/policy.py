"""The operator's rules for judges: which environment variables a judge may name, and where it may send requests.

Checked when a judge is saved (check_judge) and again in the worker right before a call (settings may have changed
since): see docs/security.md, "Judges: owners, key variables and endpoints".

- EVALPLATFORM_JUDGE_KEY_ENVS: entries `NAME` (the key may go to any allowed endpoint) or `NAME=URL_PREFIX` (only
  to endpoints under that prefix). Names that hold the server's own secrets are never usable, listed or not.
- EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS: base URL prefixes. A judge's base_url is allowed when its scheme, host and
  port equal an entry's and its path is the entry's path or below it (at a "/" boundary).
- A host's addresses (every one it resolves to) must be public, unless the address is named literally as the host
  of an allowed endpoint or lies in EVALPLATFORM_JUDGE_PRIVATE_NETWORKS (CIDRs).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# The server's own secrets: never sent to a judge, whatever the allow-list says.
FORBIDDEN_KEY_ENVS = frozenset(
    {"DJANGO_SECRET_KEY", "SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL",
     "PGPASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
)  # fmt: skip
FORBIDDEN_KEY_PREFIXES = ("DJANGO_", "EVALPLATFORM_", "PG")
_KEY_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,99}")
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)*")
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*")
_PATH = re.compile(r"[A-Za-z0-9/_~.-]*")
DEFAULT_PORTS = {"http": 80, "https": 443}


class PolicyError(ValueError):
    """A judge setting the operator's rules refuse; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    path: str  # without a trailing "/"

    def under(self, prefix: Endpoint) -> bool:
        """Return whether this endpoint is the prefix's or below it (same origin, path at a "/" boundary)."""
        same_origin = (self.scheme, self.host, self.port) == (prefix.scheme, prefix.host, prefix.port)
        return same_origin and (self.path == prefix.path or self.path.startswith(prefix.path + "/"))


def parse_endpoint(url: str) -> Endpoint:
    """Return the endpoint of a base URL; raise PolicyError on anything but a plain http(s) URL."""
    if any(ord(c) <= 32 or ord(c) >= 127 for c in url.strip()):
        # urlsplit silently drops tabs and newlines (as browsers do): "http://127.0.0.1:80\t01" would read as :8001
        raise PolicyError("base_url", "must hold only printable ASCII characters, without spaces (write IDN hosts in "
                          "punycode)")  # fmt: skip
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise PolicyError("base_url", f"not a valid URL: {exc}") from exc
    if parts.scheme not in DEFAULT_PORTS:
        raise PolicyError("base_url", f"must be an http(s) URL, not {url!r}")
    if "@" in parts.netloc or "\\" in url:
        raise PolicyError("base_url", "must not contain a user name, password or backslash")
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        raise PolicyError("base_url", "must not have a query or fragment")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise PolicyError("base_url", "has no host")
    address = _literal_address(host)
    if address is None and (_NUMERIC_HOST.fullmatch(host) or not _HOST.fullmatch(host)):
        raise PolicyError("base_url", f"host {host!r} is neither a DNS name nor an IP address in standard form")
    path = parts.path.rstrip("/")
    if not _PATH.fullmatch(path) or any(segment in (".", "..") for segment in path.split("/")):
        raise PolicyError("base_url", "path may hold only letters, digits and / _ ~ . - (no . or .. segments)")
    return Endpoint(parts.scheme, str(address) if address else host, port or DEFAULT_PORTS[parts.scheme], path)


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def allowed_endpoints() -> list[Endpoint]:
    """Return the operator's allowed endpoint prefixes (a malformed entry is skipped: it allows nothing)."""
    endpoints = []
    for entry in settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS:
        try:
            endpoints.append(parse_endpoint(entry))
        except PolicyError:
            continue
    return endpoints


def private_allowed(address: IPAddress) -> bool:
    """Return whether a non-public address was allowed explicitly (a literal endpoint host, or a listed network)."""
    if any(_literal_address(e.host) == address for e in allowed_endpoints()):
        return True
    for network in settings.EVALPLATFORM_JUDGE_PRIVATE_NETWORKS:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except (ValueError, TypeError):
            continue
    return False


def is_public(address: IPAddress) -> bool:
    """Return whether the address is globally routable unicast (not loopback, private, link-local, reserved...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_multicast or address.is_loopback or address.is_link_local or address.is_reserved
        or address.is_unspecified or address.is_private
    )  # fmt: skip


def address_problem(address: str) -> str | None:
    """Return why the worker must not connect to this resolved address, or None."""
    ip = _literal_address(address.split("%", 1)[0])
    if ip is None:
        return f"{address!r} is not an IP address"
    if is_public(ip) or private_allowed(ip):
        return None
    return (
        f"{ip} is a loopback, private, link-local, multicast or reserved address, not allowed by the operator "
        "(EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS, EVALPLATFORM_JUDGE_PRIVATE_NETWORKS)"
    )


def resolve(host: str, port: int) -> list[str]:
    """Return every address the host resolves to (a literal address is itself); raise OSError when it does not."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def check_endpoint(url: str, *, resolve_host: bool = True, unresolvable_ok: bool = False) -> Endpoint:
    """Return the endpoint if the operator allows it; raise PolicyError("base_url", why) if not.

    With resolve_host, every address the host resolves to must be allowed too (a name resolving to 127.0.0.1 is
    refused unless 127.0.0.1 is allowed); a name that does not resolve is refused, unless unresolvable_ok (the
    worker: the call then fails as a connection error, and its resolver checks the addresses at connect time).
    """
    endpoint = parse_endpoint(url)
    allowed = allowed_endpoints()
    if not any(endpoint.under(prefix) for prefix in allowed):
        listed = ", ".join(settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS) or "none"
        raise PolicyError(
            "base_url",
            f"{url!r} is not under an endpoint the operator allows (EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS: {listed})",
        )
    if not resolve_host:
        return endpoint
    try:
        addresses = resolve(endpoint.host, endpoint.port)
    except OSError as exc:
        if unresolvable_ok:
            return endpoint
        raise PolicyError("base_url", f"host {endpoint.host!r} does not resolve: {exc}") from exc
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise PolicyError("base_url", f"host {endpoint.host!r} resolves to {problem}")
    return endpoint


def check_key_env(name: str, base_url: str) -> None:
    """Raise PolicyError("api_key_env", why) unless the operator lets a judge at base_url name this variable."""
    if not name:
        return
    if not _KEY_NAME.fullmatch(name):
        raise PolicyError("api_key_env", f"{name!r} is not an environment variable name (A-Z, 0-9 and _)")
    if name in FORBIDDEN_KEY_ENVS or name.startswith(FORBIDDEN_KEY_PREFIXES):
        raise PolicyError("api_key_env", f"{name} holds the server's own secrets and is never sent to a judge")
    entries = [entry.partition("=") for entry in settings.EVALPLATFORM_JUDGE_KEY_ENVS]
    prefixes = [prefix.strip() for listed, _, prefix in entries if listed.strip() == name]
    if not prefixes:
        listed = ", ".join(sorted({e[0].strip() for e in entries})) or "none"
        raise PolicyError(
            "api_key_env", f"{name} is not a key variable the operator allows (EVALPLATFORM_JUDGE_KEY_ENVS: {listed})"
        )
    if "" in prefixes:
        return
    endpoint = parse_endpoint(base_url)
    for prefix in prefixes:
        try:
            if endpoint.under(parse_endpoint(prefix)):
                return
        except PolicyError:
            continue
    raise PolicyError("api_key_env", f"{name} may be sent only to {', '.join(prefixes)}, not to {base_url!r}")
