"""Whose request this is: nginx's X-Real-IP, believed only from a trusted proxy (TRUSTED_PROXIES)."""

from __future__ import annotations

import ipaddress

from flask import request

from api.services import services


def _is_trusted(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in services().settings.trusted_networks)


def client_address() -> str:
    """The client's address; anyone else's forwarding headers are ignored."""
    peer = request.remote_addr or "unknown"
    if _is_trusted(peer):
        return request.headers.get("X-Real-IP", peer)
    return peer
