"""Every key the footer shows does something a user can see, on every screen and in both modes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.screen import ModalScreen

from conftest import kill_leftover_engines
from surgtui.tui.app import SurgApp
from surgtui.tui.screens.compare import CompareScreen
from surgtui.tui.screens.experiments import ExperimentsScreen
from surgtui.tui.screens.monitor import MonitorScreen
from surgtui.tui.screens.runs import RunsScreen
from test_tui_fixtures import copy_experiments, stand_in, wait_until, write_runs  # noqa: F401  (stand_in: a fixture)

# (mode, what is pushed on top of the mode's own screen)
CONTEXTS = [
    ("experiments", None),
    ("runs", None),
    ("experiments", "monitor"),
    ("runs", "monitor"),
    ("runs", "compare"),
]


def _state(app: SurgApp) -> tuple:
    """What a key press can visibly change."""
    screen = app.screen
    return (
        app.current_mode,
        tuple(map(id, app.screen_stack)),
        len(app._notifications),
        id(app.focused),
        getattr(screen, "sort_key", None),
        getattr(screen, "descending", None),
        tuple(getattr(screen, "marked", ())),
        bool(app._exit),
    )


async def _enter(pilot, mode: str, top: str | None, runs: list[Path]) -> None:
    app = pilot.app
    while isinstance(app.screen, ModalScreen):
        await app.pop_screen()
    if app.current_mode != mode:
        await app.switch_mode(mode)
    while len(app.screen_stack) > 1:
        await app.pop_screen()
    if mode == "runs":
        await wait_until(pilot, lambda: app.screen.query_one("#runs-table").row_count == 5, what="the runs")
        app.screen.query_one("#runs-table").focus()
    else:
        await wait_until(pilot, lambda: app.screen.draft is not None, what="an experiment")
        app.screen.query_one("#experiment-list").focus()
    if top == "monitor":
        screen = MonitorScreen(runs[1])
        await app.push_screen(screen)
        await wait_until(pilot, lambda: screen.view is not None, what="the monitor")
    elif top == "compare":
        await app.push_screen(CompareScreen(runs[:2]))
    await pilot.pause(0.1)


def _footer_keys(app: SurgApp) -> list[tuple[str, str]]:
    return [
        (key, b.binding.description)
        for key, b in app.screen.active_bindings.items()
        if b.binding.show and b.enabled
    ]


@pytest.mark.parametrize("mode,top", CONTEXTS)
@pytest.mark.usefixtures("stand_in")
def test_every_key_in_the_footer_does_something(tmp_path: Path, mode: str, top: str | None) -> None:
    exps = copy_experiments(tmp_path / "experiments", ("smoke",))
    runs = write_runs(tmp_path / "runs")

    async def scenario() -> None:
        app = SurgApp(exps, tmp_path / "runs")
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await _enter(pilot, mode, top, runs)
            keys = _footer_keys(app)
            assert keys, "no keys in the footer"
            dead = []
            for key, description in keys:
                await _enter(pilot, mode, top, runs)
                before = _state(app)
                await pilot.press(key)
                await pilot.pause(0.2)
                if _state(app) == before:
                    dead.append(f"{key} ({description})")
            assert not dead, f"keys that did nothing on {top or mode}: {dead}"
            await _enter(pilot, mode, None, runs)

    try:
        asyncio.run(scenario())
    finally:
        kill_leftover_engines(tmp_path)


def test_f2_f3_leave_a_monitor_or_comparison_opened_in_their_own_mode(tmp_path: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments", ("smoke",))
    runs = write_runs(tmp_path / "runs")

    async def scenario() -> None:
        app = SurgApp(exps, tmp_path / "runs")
        async with app.run_test(size=(100, 30)) as pilot:
            await _enter(pilot, "experiments", "monitor", runs)
            await pilot.press("f2")
            await pilot.pause(0.1)
            assert isinstance(app.screen, ExperimentsScreen) and len(app.screen_stack) == 1
            await _enter(pilot, "runs", "compare", runs)
            await pilot.press("f3")
            await pilot.pause(0.1)
            assert isinstance(app.screen, RunsScreen) and len(app.screen_stack) == 1

    asyncio.run(scenario())


def test_f4_on_a_monitor_follows_the_newest_run(tmp_path: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments", ("smoke",))
    runs = write_runs(tmp_path / "runs")

    async def scenario() -> None:
        app = SurgApp(exps, tmp_path / "runs")
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await _enter(pilot, "experiments", "monitor", runs)  # an older run
            await pilot.press("f4")
            await pilot.pause(0.1)
            assert isinstance(app.screen, MonitorScreen) and app.screen.run_dir == runs[-1]
            await pilot.press("f4")  # already there: says so
            await pilot.pause(0.1)
            assert app.screen.run_dir == runs[-1]
            assert "already following" in list(app._notifications)[-1].message

    asyncio.run(scenario())


def test_stop_is_offered_only_while_the_run_runs(tmp_path: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments", ("smoke",))
    runs = write_runs(tmp_path / "runs")

    async def scenario() -> None:
        app = SurgApp(exps, tmp_path / "runs")
        async with app.run_test(size=(100, 30)) as pilot:
            await _enter(pilot, "runs", "monitor", runs)
            assert "Stop run" not in dict(_footer_keys(app)).values()

    asyncio.run(scenario())


def test_every_binding_has_an_id_and_a_keymap_remaps_it(tmp_path: Path) -> None:
    """Keys can be remapped by binding id (Textual's keymap): each id names one binding."""
    from surgtui.tui import keymap

    bindings = [
        b for name in dir(keymap) if name.isupper() for b in getattr(keymap, name) if hasattr(b, "id")
    ]
    ids = [b.id for b in bindings]
    assert None not in ids, [b.action for b in bindings if b.id is None]
    assert len(set(ids)) == len(set(map(id, bindings))), "two bindings share an id"

    exps = copy_experiments(tmp_path / "experiments", ("smoke",))
    write_runs(tmp_path / "runs")

    async def scenario() -> None:
        app = SurgApp(exps, tmp_path / "runs")
        async with app.run_test(size=(100, 30)) as pilot:
            app.set_keymap({"app.runs": "f9"})
            await pilot.press("f3")  # the old key no longer switches
            await pilot.pause(0.1)
            assert app.current_mode == "experiments"
            await pilot.press("f9")
            await pilot.pause(0.1)
            assert app.current_mode == "runs" and isinstance(app.screen, RunsScreen)

    asyncio.run(scenario())
