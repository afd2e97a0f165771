"""The layout's rules, read from every module's imports with `ast` (docs/design.md, "The parts").

The folders are the rooms and the imports run one way: the shell (`node`) onto the core
(`board`); inside the core, the handheld grammar and sync onto the store, and the store onto the
wire format, the messages and the domain. Written down only, such rules drift; here a forbidden
arrow or an import cycle fails the suite, naming the modules.

Imports under `if TYPE_CHECKING:` never run, so they cannot close a cycle; they still count as
arrows for the rules, since a type names a dependency too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("board", "node")
MAX_LINES = 800
MAX_MODULES_PER_FOLDER = 15

#: The shell side of `node` that runs on the Pi: the daemon and what it is built from.
DAEMON_SIDE = (
    "node.daemon",
    "node.outbox",
    "node.supervisor",
    "node.health",
    "node.status",
    "node.clock",
    "node.logs",
    "node.rings_view",
    "node.link",
    "node.meshtastic_link",
)
#: Third-party libraries only the shell may use: the radio and the command line.
SHELL_ONLY = ("meshtastic", "serial", "pubsub", "click")
BOARD_FLOORS = ("board.handheld", "board.sync", "board.store", "board.wire")


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str  # a first-party module, or a third-party top-level package
    runtime: bool  # False for imports under `if TYPE_CHECKING:`


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def first_party_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def arrows_of(name: str, source: str, modules: Mapping[str, object]) -> Iterator[Arrow]:
    """Every import in `source` (module `name`), resolved to the module it loads."""
    tree = ast.parse(source)
    typing_only = _type_checking_lines(tree)
    package = name if name in modules and _is_package(name, modules) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        runtime = getattr(node, "lineno", 0) not in typing_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Arrow(name, _known(alias.name, modules), runtime)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield Arrow(
                    name, _known(submodule if submodule in modules else base, modules), runtime
                )


def _is_package(name: str, modules: Mapping[str, object]) -> bool:
    path = modules[name]
    return isinstance(path, Path) and path.name == "__init__.py"


def _known(target: str, modules: Mapping[str, object]) -> str:
    """The first-party module itself, or the top-level name of a third-party one."""
    return target if target in modules else target.split(".")[0]


def all_arrows() -> list[Arrow]:
    modules = first_party_modules()
    return [
        arrow
        for name, path in modules.items()
        for arrow in arrows_of(name, path.read_text(encoding="utf-8"), modules)
    ]


def _within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def forbidden(arrow: Arrow) -> str | None:
    """Why an arrow breaks the layout's rules, or None when it is allowed."""
    source, target = arrow.source, arrow.target
    if _within(source, "board"):
        if _within(target, "node", *SHELL_ONLY):
            return "the core imports no shell, radio or CLI"
        if source == "board.messages" and arrow.runtime and _within(target, "board"):
            return "board.messages is a leaf"
        if _within(source, "board.wire") and _within(
            target, "board.store", "board.handheld", "board.sync", "board.messages"
        ):
            return "the wire format sits below the store, the grammar and sync"
        if _within(source, "board.store") and _within(target, "board.handheld", "board.sync"):
            return "the store sits below the grammar and sync"
        if _within(source, "board.sync") and _within(target, "board.handheld"):
            return "sync does not speak the handheld grammar"
        if _within(source, "board.handheld") and _within(target, "board.sync"):
            return "the handheld grammar leaves sync to the engine"
        if not _within(source, *BOARD_FLOORS) and _within(
            target, "board.store", "board.handheld", "board.sync"
        ):
            return "the domain at board/'s root sits below the store"
    if _within(source, "node.sim") and _within(target, "board"):
        return "the simulator knows no board"
    if source in DAEMON_SIDE and _within(
        target, "node.cli", "node.rings_cli", "node.commands", "node.demo", "node.sim"
    ):
        return "the daemon side never imports the CLI, the demo or the simulator"
    return None


def cycles(arrows: list[Arrow]) -> list[list[str]]:
    """Import cycles among first-party modules (runtime imports only), each once."""
    graph: dict[str, set[str]] = {}
    for arrow in arrows:
        if arrow.runtime and _within(arrow.target, *PACKAGES) and arrow.target != arrow.source:
            graph.setdefault(arrow.source, set()).add(arrow.target)
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                loop = path[path.index(target) :]
                if frozenset(loop) not in seen:
                    seen.add(frozenset(loop))
                    found.append([*loop, target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_no_module_imports_across_a_forbidden_arrow() -> None:
    broken = sorted(
        f"{a.source} -> {a.target}: {why}" for a in all_arrows() if (why := forbidden(a))
    )
    assert broken == []


def test_no_first_party_modules_import_each_other_in_a_circle() -> None:
    assert [" -> ".join(loop) for loop in cycles(all_arrows())] == []


def test_no_module_is_over_800_lines() -> None:
    long = {
        name: lines
        for name, path in first_party_modules().items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


@pytest.mark.parametrize("folder", ["board", "node"])
def test_a_folder_holds_at_most_15_modules(folder: str) -> None:
    assert len(list((ROOT / folder).glob("*.py"))) <= MAX_MODULES_PER_FOLDER


# The checks themselves: each must fail on what it is there to catch.


def _arrows(source: str, name: str, modules: tuple[str, ...]) -> list[Arrow]:
    known = {module: object() for module in modules}
    return list(arrows_of(name, source, known))


def test_the_check_catches_a_core_module_that_imports_the_radio_or_the_shell() -> None:
    modules = ("board.bulletin", "node.daemon")
    for source in ("import meshtastic.serial_interface", "from node.daemon import Daemon"):
        assert [forbidden(a) for a in _arrows(source, "board.bulletin", modules)] != [None]


def test_the_check_catches_the_store_reaching_up_and_the_simulator_knowing_a_board() -> None:
    modules = ("board.store.outbox", "board.handheld.commands", "node.sim.radio", "board.store")
    up = _arrows("from board.handheld.commands import Reply", "board.store.outbox", modules)
    assert forbidden(up[0]) == "the store sits below the grammar and sync"
    sim = _arrows("from board.store import outbox", "node.sim.radio", modules)
    assert forbidden(sim[0]) == "the simulator knows no board"


def test_the_check_finds_a_cycle_and_ignores_imports_for_type_checking_only() -> None:
    modules = ("board.a", "board.b", "board.c")
    arrows = [
        *_arrows("from board.b import x", "board.a", modules),
        *_arrows("import board.c", "board.b", modules),
        *_arrows("from board import a", "board.c", modules),
    ]
    assert cycles(arrows) == [["board.a", "board.b", "board.c", "board.a"]]
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from board.a import x\n"
    assert cycles([*arrows[:2], *_arrows(typed, "board.c", modules)]) == []


def test_the_readmes_map_names_every_folder_of_the_code_and_no_other() -> None:
    """README's "How it is built" is the newcomer's map: it must match the tree."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How it is built", 1)[1]
    block = section.split("```", 2)[1]
    mapped = {line.split()[0].rstrip("/") for line in block.splitlines() if line[:1].strip()}
    folders = {
        str(path.parent.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("__init__.py")
    }
    assert folders <= mapped
    assert {m for m in mapped if not (ROOT / m).exists()} == set()
