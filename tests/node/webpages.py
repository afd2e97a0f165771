"""Shared by the web page's and the poster's tests: the configuration they serve, the private
ring's text that must never show, and a free port for a real `meshboard web`."""

from __future__ import annotations

import socket

#: The public ring on the web, and a private ring that must never reach a page or a poster.
WEB_AND_GARDEN = """
[[ring]]
name = "public"
channel = 0
web = true

[[ring]]
name = "garden"
channel = 1
"""
SECRET = "Garden feast behind the allotments"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
