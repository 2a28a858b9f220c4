"""Whose request this is: nginx's X-Real-IP, believed only from a trusted proxy (TRUSTED_PROXIES)."""

from __future__ import annotations

import ipaddress
import logging

from flask import g, request

from api.services import services

log = logging.getLogger("api.client_address")


def _is_trusted(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in services().settings.trusted_networks)


def client_address() -> str:
    """The client's address; anyone else's forwarding headers are ignored, and a trusted
    proxy's X-Real-IP counts only when it is an address (it names a Redis key): else the peer."""
    peer = request.remote_addr or "unknown"
    forwarded = request.headers.get("X-Real-IP", "")
    if forwarded and _is_trusted(peer):
        try:
            return ipaddress.ip_address(forwarded.strip()).compressed
        except ValueError:
            log.warning("ignoring X-Real-IP that is not an address", extra={"request_id": g.get("request_id")})
    return peer
