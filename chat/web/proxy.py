# -*- test-case-name: tests.test_web_proxy -*-
"""
The client's real address behind reverse proxies (PROTOCOL.md section 9):
C{X-Forwarded-For} is believed only from C{--trusted-proxy} networks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """
    Parse C{--trusted-proxy} values: C{10.0.0.0/8}, C{::1}, C{192.0.2.7}.

    @raise ValueError: a value is not an address or a network, naming it.
    """
    parsed = []
    for cidr in cidrs:
        try:
            parsed.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not an address or a network such as 10.0.0.0/8") from None
    return tuple(parsed)


class TrustedProxies:
    """
    The proxies whose C{X-Forwarded-For} and C{X-Forwarded-Proto} headers
    are believed.
    """

    def __init__(self, trusted: Sequence[Network] = ()) -> None:
        self.trusted = tuple(trusted)

    def trusts(self, address: str) -> bool:
        """
        Whether C{address} (an IP address as text) is a trusted proxy; never
        for anything that is not an IP address (a UNIX socket path).
        """
        if not self.trusted:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.trusted)

    def client(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """
        The client's address: C{peer} (the address of the TCP connection)
        unless it is a trusted proxy; then the right-most address of the
        C{X-Forwarded-For} values that is not itself a trusted proxy. The
        walk stops at a value that is not an IP address, and the address
        before it (the nearest proxy that named one) is taken: a client
        cannot pass off a made-up left part as its address.

        @param forwarded_for: the header's values, in the order received
            (each may list several addresses separated by commas).
        """
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        client = peer
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop.split("%", 1)[0])
            except ValueError:
                break
            client = hop
            if not self.trusts(hop):
                break
        return client

    def secure(self, peer: str, tls: bool, forwarded_proto: Sequence[str]) -> bool:
        """
        Whether the client's connection is encrypted: C{tls} (to this
        daemon), or a trusted proxy says the client came over HTTPS
        (C{X-Forwarded-Proto: https}, its last value).
        """
        if tls:
            return True
        if not forwarded_proto or not self.trusts(peer):
            return False
        return forwarded_proto[-1].split(",")[-1].strip().lower() == "https"
