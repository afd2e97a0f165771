"""`meshboard demo`: one board node on a simulated radio, and a scripted neighbour.

Everything is the real thing except the radio hardware: the daemon talks to the simulated radio
through the official meshtastic client over a pty, and stores in a real SQLite file.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from board.commands import BoardConfig
from board.store import Store
from node.daemon import Daemon
from node.link import MeshtasticLink
from node.sim.radio import RadioProfile, SimulatedRadio, Transmission, node_id

logger = logging.getLogger(__name__)

NEIGHBOUR_NUM = 0x1234ABCD
NEIGHBOUR_NAME = "Ana"
REPLY_TIMEOUT = 30.0


def neighbour_script(ref: str | None) -> list[str]:
    """What the scripted neighbour types, in order; `read` needs the ref the board gave."""
    if ref is None:
        return ["help", "post meal tomorrow 18:00 Soup at the hall, bring a bowl"]
    return ["list meal", f"read #{ref}"]


def run_demo(say: Callable[[str], None], db_path: Path | None, tz: ZoneInfo) -> int:
    """Run the conversation, calling `say` with each line as it happens.

    Returns how many bulletins the board holds at the end.
    """
    with tempfile.TemporaryDirectory(prefix="meshboard-demo-") as scratch:
        database = db_path or Path(scratch) / "demo.db"
        with SimulatedRadio(profile=RadioProfile(long_name="Hall board")) as radio:
            radio.add_handheld(NEIGHBOUR_NUM, NEIGHBOUR_NAME)
            store = Store.open(database)
            daemon = Daemon.assemble(MeshtasticLink(radio.port), store, board=BoardConfig(tz=tz))
            stop = threading.Event()
            failure: list[BaseException] = []

            def serve() -> None:
                try:
                    daemon.run(stop)
                except Exception as error:  # reported to the person running the demo below
                    failure.append(error)
                    daemon.connected.set()

            say(f"simulated radio {node_id(radio.node_num)} on {radio.port}; database {database}")
            thread = threading.Thread(target=serve, name="demo-daemon")
            thread.start()
            daemon.connected.wait(REPLY_TIMEOUT)
            if failure:
                thread.join()
                raise failure[0]
            radio.on_transmit(lambda t: _show_reply(say, t))
            try:
                _converse(say, radio)
            finally:
                stop.set()
                thread.join()
            return store.count()


def _converse(say: Callable[[str], None], radio: SimulatedRadio) -> None:
    ref: str | None = None
    for phase in range(2):
        for command in neighbour_script(ref):
            say(f"{NEIGHBOUR_NAME} → board: {command}")
            before = len(radio.texts_to(NEIGHBOUR_NUM))
            radio.receive_text(NEIGHBOUR_NUM, command, direct=True)
            replies = radio.wait_for_texts(NEIGHBOUR_NUM, before + 1, timeout=REPLY_TIMEOUT)
            match = re.match(r"ok #(\w+)", replies[-1])
            if match:
                ref = match.group(1)
        if phase == 0 and ref is None:
            raise RuntimeError("the board did not acknowledge the post")


def _show_reply(say: Callable[[str], None], transmission: Transmission) -> None:
    if transmission.packet.to == NEIGHBOUR_NUM and transmission.text is not None:
        say(f"board → {NEIGHBOUR_NAME}: " + transmission.text.replace("\n", "\n    "))
