"""Refuse crawl targets in private, loopback, link-local and other non-public address space.

The check runs on the *resolved* addresses (a public-looking name can point at 127.0.0.1 or at a cloud
metadata endpoint, and numeric spellings such as ``http://2130706433/`` resolve to loopback), and every
address a name resolves to must pass. Exceptions are explicit: an allow-list of networks (CIDR) or host
names, or ``allow_private`` (the ``--allow-private-targets`` flag, which tests on loopback need).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]


class TargetRefused(Exception):
    """The URL's host is (or resolves to) an address we do not crawl."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"refused target {host} ({address}): {reason}")
        self.host = host
        self.address = address
        self.reason = reason


def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6); [] when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def classify(address: str) -> str | None:
    """Why ``address`` is not a public target, or None when it is."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return classify(str(mapped))
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True)
class SsrfConfig:
    allow_private: bool = False
    allow_networks: tuple[str, ...] = ()  # CIDRs crawled even though they are private
    allow_hosts: tuple[str, ...] = ()  # host names (or ".suffix") crawled whatever they resolve to


@dataclass
class TargetGuard:
    config: SsrfConfig = field(default_factory=SsrfConfig)
    resolver: Resolver = system_resolve

    def __post_init__(self) -> None:
        self._networks = [ipaddress.ip_network(n, strict=False) for n in self.config.allow_networks]
        self._hosts = tuple(h.lower().rstrip(".") for h in self.config.allow_hosts)

    def host_allowed(self, host: str) -> bool:
        h = host.lower().rstrip(".")
        return any(h == a or (a.startswith(".") and h.endswith(a)) for a in self._hosts)

    def refusal(self, address: str) -> str | None:
        """Why a resolved address is refused (None: allowed)."""
        if self.config.allow_private:
            return None
        reason = classify(address)
        if reason is None:
            return None
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return reason
        if any(ip in net for net in self._networks):
            return None
        return reason

    def check(self, host: str, port: int = 80, addresses: Sequence[str] | None = None) -> list[str]:
        """Resolve ``host`` (unless ``addresses`` are given) and raise :class:`TargetRefused` if any
        address is refused. Returns the addresses; [] when the name does not resolve (the fetch will
        then fail on its own)."""
        if self.config.allow_private or self.host_allowed(host):
            return list(addresses or [])
        addrs = list(addresses) if addresses is not None else self.resolver(host.strip("[]"), port)
        for a in addrs:
            reason = self.refusal(a)
            if reason is not None:
                raise TargetRefused(host, a, reason)
        return addrs
