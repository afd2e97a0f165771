"""Serving the web page: waitress in front of the Flask app, bound where the operator says.

waitress is pure Python (a Pi Zero needs nothing compiled) and does the HTTP parsing, with a
thread pool, a cap on request headers and a timeout for clients that stop sending.

By default the page listens on the Pi's LAN only: every private address its interfaces hold
when it starts (the hotspot's 10.42.0.1, a home network's 192.168.x.y, the loopback), never a
public one, so a Pi that also has a public IPv6 address or sits on an open uplink does not
serve the neighbourhood's board to the internet. psutil lists the addresses (no ioctl written
by hand); an address that appears later (a Wi-Fi that joins after boot) needs a restart, which
the systemd unit orders after network-online.target.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Sequence

import psutil
import waitress
from flask import Flask

logger = logging.getLogger(__name__)

#: `lan` stands for every private address of the Pi (see the module's docstring).
LAN = "lan"
DEFAULT_LISTEN = f"{LAN}:8080"
MAX_HEADER_BYTES = 8192
SLOW_CLIENT_SECONDS = 30

Address = tuple[str, int]


def parse_listen(text: str) -> list[Address]:
    """`HOST:PORT` (an IPv6 host in brackets, or `lan` for every LAN address) → where to
    listen; ValueError says what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"--listen wants HOST:PORT, such as 10.42.0.1:80 or lan:80, not {text!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"--listen port must be 1-65535, not {port}")
    if host == LAN:
        return [(address, port) for address in lan_addresses()]
    host = host.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"--listen wants an IP address or {LAN!r}, not {host!r}") from None
    return [(host, port)]


def lan_addresses() -> list[str]:
    """The machine's private addresses (RFC 1918, loopback, IPv6 unique-local), loopback
    first; never a public one, nor an IPv6 link-local one (it would need its interface)."""
    found: set[str] = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(address.address.partition("%")[0])
            except ValueError:
                continue
            if ip.is_private and not ip.is_link_local and not ip.is_multicast:
                found.add(str(ip))
    return sorted(found, key=lambda a: (not ipaddress.ip_address(a).is_loopback, a))


def home_of(listen: Sequence[Address]) -> str | None:
    """The page's own `host[:port]` when it listens on one address (see `create_app`'s
    captive redirect); None when on several, since a phone on one network must not be sent
    to the address of another."""
    if len(listen) != 1:
        return None
    host, port = listen[0]
    return (f"[{host}]" if ":" in host else host) + ("" if port == 80 else f":{port}")


def serve(app: Flask, listen: Sequence[Address]) -> None:
    """Serve until interrupted (SIGINT, or SIGTERM from systemd)."""
    if all(ipaddress.ip_address(host).is_loopback for host, _ in listen):
        logger.warning("listening on the loopback only: neighbours cannot reach the page")
    spec = " ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in listen)
    for host, port in listen:
        shown = f"[{host}]" if ":" in host else host
        logger.info("serving the board's web page on http://%s:%d/", shown, port)
    waitress.serve(
        app,
        listen=spec,
        threads=4,
        channel_timeout=SLOW_CLIENT_SECONDS,
        max_request_header_size=MAX_HEADER_BYTES,
        max_request_body_size=0,
        ident="meshboard",
        clear_untrusted_proxy_headers=True,
    )
