"""Can this user open the radio's serial port, and is nobody else holding it?

Looked at before the meshtastic client touches the port, so each reason gets its own finding
from the operating system's own error: the client would only say "cannot open". The probe
opens the port the way the client does (and clears HUPCL as the client does, so closing it
again does not reset an ESP32 radio), takes the same exclusive lock the client takes, and
lets go at once.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import termios

from node.doctor.findings import Finding, fail, ok

logger = logging.getLogger(__name__)

LIST_PORTS = "ls -l /dev/serial/by-id/ /dev/ttyUSB* /dev/ttyACM*"
FIND_PORT = f"{LIST_PORTS}   # which one is the radio"


def check_port(port: str) -> Finding:
    """ok when the port is a serial device this user can open and lock; else why not."""
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as error:
        return port_error(port, error)
    try:
        if not os.isatty(fd):
            return port_error(port, OSError(errno.ENOTTY, os.strerror(errno.ENOTTY), port))
        try:
            # The client opens with pyserial's exclusive=True: this lock. A running board
            # daemon (or a `meshtastic` command) holds it for as long as it is connected.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            return port_error(port, error)
        _keep_lines_up(fd)
    finally:
        os.close(fd)
    return ok("port", f"{port}: a serial port, free")


def port_error(port: str, error: OSError) -> Finding:
    """The finding for an operating system's error about the port, with the fix for it."""
    code = error.errno
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return fail(
            "port",
            f"{port} does not exist: radio unplugged, a charge-only cable, or another name",
            FIND_PORT,
        )
    if code in (errno.EACCES, errno.EPERM):
        return fail(
            "port",
            f"{port}: permission denied; the user needs the dialout group",
            "sudo usermod -aG dialout $USER   # then log out and in again",
            "sudo usermod -aG dialout meshboard   # the service's user",
        )
    if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
        return fail(
            "port",
            f"{port} is in use by another program: the board daemon or a meshtastic command",
            "meshboard status   # a running board reports its radio here",
            "sudo systemctl stop meshboard   # to check the radio here instead",
        )
    if code == errno.ENOTTY:
        return fail("port", f"{port} is not a serial port", FIND_PORT)
    return fail("port", f"cannot open {port}: {error.strerror or error}", FIND_PORT)


def _keep_lines_up(fd: int) -> None:
    """Clear HUPCL, as the client does first, so that closing the port leaves DTR alone.

    With HUPCL set, the last close drops DTR, and the auto-reset circuit of many ESP32 boards
    restarts the radio: the handshake that follows would meet a booting radio.
    """
    try:
        attrs = termios.tcgetattr(fd)
        attrs[2] &= ~termios.HUPCL
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error as error:  # the client's own open tries the same, and says more
        logger.info("cannot clear HUPCL on the port: %s", error)
