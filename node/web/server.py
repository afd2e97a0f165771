"""Serving the web page: waitress in front of the Flask app, bound where the operator says.

waitress is pure Python (a Pi Zero needs nothing compiled) and does the HTTP parsing, with a
thread pool, a cap on request headers and a timeout for clients that stop sending.
"""

from __future__ import annotations

import ipaddress
import logging

import waitress
from flask import Flask

logger = logging.getLogger(__name__)

#: The default address: the loopback only, until the operator names the Pi's LAN address
#: (`--listen 10.42.0.1:80` on the board's own Wi-Fi, see firmware_notes/).
DEFAULT_LISTEN = "127.0.0.1:8080"
MAX_HEADER_BYTES = 8192
SLOW_CLIENT_SECONDS = 30


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (an IPv6 host in brackets) → (host, port); ValueError says what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"--listen wants HOST:PORT, such as 10.42.0.1:80, not {text!r}")
    host = host.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"--listen wants an IP address, not {host!r}") from None
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"--listen port must be 1-65535, not {port}")
    return host, port


def serve(app: Flask, host: str, port: int) -> None:
    """Serve until interrupted (SIGINT, or SIGTERM from systemd)."""
    logger.info("serving the board's web page on http://%s:%d/", host, port)
    waitress.serve(
        app,
        host=host,
        port=port,
        threads=4,
        channel_timeout=SLOW_CLIENT_SECONDS,
        max_request_header_size=MAX_HEADER_BYTES,
        max_request_body_size=0,
        ident="meshboard",
        clear_untrusted_proxy_headers=True,
    )
