"""`ask` sends a command again only when the handheld's app would say it was not delivered."""

from __future__ import annotations

import threading

from node.demo.neighbourhood import Neighbourhood, ask
from node.sim.mesh import Mesh
from node.sim.radio import SimulatedRadio


def test_a_command_the_app_reports_undelivered_is_sent_again(
    mesh: Mesh, hood: Neighbourhood
) -> None:
    radio = mesh.add_radio()
    assert isinstance(radio, SimulatedRadio)
    node = hood.attach(radio)
    ana = hood.neighbour(node)
    mesh.unlink(ana, radio)  # Ana walked out of range: her firmware's retries all go unheard
    answers: list[str] = []
    asking = threading.Thread(target=lambda: answers.append(ask(ana, node, "list")))
    asking.start()
    assert hood.wait_until(lambda: any(not r.ok for r in ana.routing), 30.0)  # the app's red X
    mesh.link(ana, radio)  # back in range, she sends it again
    asking.join(timeout=30.0)
    assert answers == ["no bulletins"]
    assert sum(not r.ok for r in ana.routing) == 1  # sent twice: once unheard, once answered
