"""Experiments screen: list, edit, validate at the field, diff, save, save as, revert."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Input, Label, Static

from surgtui.runs import launcher
from surgtui.runs.store import Run
from surgtui.tui.app import SurgApp
from surgtui.tui.screens.choice import LaunchEditedScreen, QuitScreen
from surgtui.tui.screens.confirm import ConfirmScreen
from surgtui.tui.screens.experiments import ExperimentsScreen
from surgtui.tui.screens.monitor import MonitorScreen
from surgtui.tui.widgets.experiment_list import ExperimentList
from test_tui_fixtures import (  # noqa: F401  (stand_in: a fixture)
    EXPERIMENTS,
    copy_experiments,
    stand_in,
    type_into,
    wait_until,
    write_run,
)

LR_LINE = "lr = 0.001                # learning rate of the neck and heads (randomly initialised)"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return copy_experiments(tmp_path / "experiments"), tmp_path / "runs"


async def _ready(pilot) -> ExperimentsScreen:
    screen = pilot.app.screen
    await wait_until(pilot, lambda: screen.draft is not None, what="the first experiment to load")
    return screen


def _error(screen: ExperimentsScreen, key: str) -> str:
    return str(screen.query_one(f"#field-{key.replace('.', '-')} .field-error", Static).render())


def test_list_shows_files_variants_and_last_best_map(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs
    write_run(runs, "focal", quality=1.2)

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30)) as pilot:
            screen = await _ready(pilot)
            table = screen.query_one(ExperimentList)
            await wait_until(pilot, lambda: table.row_count == 3, what="three experiments")
            rows = {table.get_row_at(i)[1].plain: table.get_row_at(i) for i in range(table.row_count)}
            assert set(rows) == {"baseline", "focal", "smoke"}
            assert rows["focal"][2] == "Focal"
            assert rows["focal"][3].plain == "0.4669"  # best mAP50-95 of its latest run
            assert rows["smoke"][3].plain == ""

    asyncio.run(scenario())


def test_edit_save_changes_only_that_value_and_keeps_comments(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs
    path = exps / "baseline.toml"
    before = path.read_text()

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30)) as pilot:
            screen = await _ready(pilot)
            await type_into(pilot, "#field-optim-lr Input", "0.002")
            assert screen.draft.edits == {"optim.lr": 0.002}
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), what="the diff")
            diff = pilot.app.screen.body.plain
            assert "-" + LR_LINE in diff and "+" + LR_LINE.replace("0.001", "0.002") in diff
            assert path.read_text() == before  # nothing written before the answer
            await pilot.press("y")
            await wait_until(pilot, lambda: not screen.draft.dirty, what="the save")

    asyncio.run(scenario())
    assert path.read_text() == before.replace(LR_LINE, LR_LINE.replace("0.001", "0.002"))


def test_invalid_value_is_flagged_at_the_field_and_never_saved(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs
    path = exps / "baseline.toml"
    before = path.read_text()

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30), notifications=True) as pilot:
            screen = await _ready(pilot)
            await type_into(pilot, "#field-model-img_size Input", "100")
            await type_into(pilot, "#field-optim-weight_decay Input", "-1")
            assert "multiple of 32" in _error(screen, "model.img_size")
            assert "must be >= 0" in _error(screen, "optim.weight_decay")
            assert _error(screen, "optim.lr") == ""
            await pilot.press("ctrl+s")
            await pilot.pause(0.2)
            assert not isinstance(pilot.app.screen, ConfirmScreen)  # no diff offered for an invalid form
            assert any("not saved" in (n.title or "") for n in pilot.app._notifications)
            await pilot.press("ctrl+n")  # nor a save-as
            await pilot.pause(0.2)
            assert isinstance(pilot.app.screen, ExperimentsScreen)
            await type_into(pilot, "#field-model-img_size Input", "640")  # fixed: the error goes
            assert _error(screen, "model.img_size") == ""

    asyncio.run(scenario())
    assert path.read_text() == before
    assert sorted(p.name for p in exps.iterdir()) == ["baseline.toml", "focal.toml", "smoke.toml"]


def test_cancelled_diff_writes_nothing_and_revert_drops_edits(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs
    before = (exps / "baseline.toml").read_text()

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30)) as pilot:
            screen = await _ready(pilot)
            await type_into(pilot, "#field-train-epochs Input", "7")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), what="the diff")
            await pilot.press("n")
            await wait_until(pilot, lambda: pilot.app.screen is screen, what="the dialog to close")
            assert screen.draft.edits == {"train.epochs": 7}
            await pilot.press("ctrl+r")
            assert not screen.draft.dirty
            assert screen.query_one("#field-train-epochs Input").value == "50"

    asyncio.run(scenario())
    assert (exps / "baseline.toml").read_text() == before


def test_save_as_writes_a_new_experiment_and_leaves_the_original(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs
    before = (exps / "smoke.toml").read_text()

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30)) as pilot:
            screen = await _ready(pilot)
            table = screen.query_one(ExperimentList)
            await wait_until(pilot, lambda: table.row_count == 3, what="the list")
            await pilot.press("down", "down")  # smoke
            await wait_until(pilot, lambda: screen.draft.path.name == "smoke.toml", what="smoke.toml")
            screen.query_one("#field-loss-focal Switch").focus()
            await pilot.press("space")
            assert screen.draft.edits == {"loss.focal": True}
            await pilot.press("ctrl+n")
            await pilot.pause(0.1)
            await pilot.press("ctrl+u", *"smoke-focal", "enter")
            await wait_until(pilot, lambda: (exps / "smoke-focal.toml").exists(), what="the new file")
            await wait_until(
                pilot, lambda: screen.draft.path.name == "smoke-focal.toml", what="its selection"
            )

    asyncio.run(scenario())
    new = (exps / "smoke-focal.toml").read_text()
    assert (exps / "smoke.toml").read_text() == before
    assert 'name = "smoke-focal"' in new and "focal = true" in new
    assert "# Smoke test: a tiny run" in new  # comments come along


def test_a_new_variant_shows_its_preset_in_fields_the_file_does_not_set(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30)) as pilot:
            screen = await _ready(pilot)
            await pilot.press("down", "down")  # smoke.toml sets no loss keys
            await wait_until(pilot, lambda: screen.draft.path.name == "smoke.toml", what="smoke.toml")
            screen.query_one("#field-variant Select").value = "YOLOv5-Legacy"
            await pilot.pause(0.1)
            assert screen.query_one("#field-loss-assignment Select").value == "size"
            assert screen.query_one("#field-loss-coord Input").value == "0.05"
            assert screen.draft.edits == {"variant": "YOLOv5-Legacy"}

    asyncio.run(scenario())


def test_enter_on_the_list_moves_into_the_form_and_escape_back(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30)) as pilot:
            screen = await _ready(pilot)
            await pilot.press("enter")
            assert pilot.app.focused is screen.query_one("#field-variant Select")
            await pilot.press("escape")
            assert isinstance(pilot.app.focused, ExperimentList)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "broken", ["[optim\nlr = 0.001\n", "[optim]\nlr = -1\n", '[train]\nepochs = "ten"\n']
)
def test_an_invalid_file_is_listed_with_its_error_and_the_rest_keep_working(dirs, broken: str) -> None:
    exps, runs = dirs
    (exps / "aaa.toml").write_text(f'name = "aaa"\n{broken}')  # sorted first: selected at start

    async def scenario() -> None:
        app = SurgApp(exps, runs)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            screen = await _ready(pilot)
            table = screen.query_one(ExperimentList)
            await wait_until(pilot, lambda: table.row_count == 4, what="four experiments")
            assert screen.draft.path.name == "aaa.toml" and screen.draft.file_error
            assert table.get_row_at(0)[2] == "invalid"
            detail = str(screen.query_one("#experiment-detail", Static).render())
            problem = str(screen.query_one("#form-problem", Static).render())
            for text in (detail, problem):
                assert any(words in text for words in ("TOML syntax", "must be > 0", "must be an integer")), (
                    text
                )
            await pilot.press("ctrl+l")  # refused with the reason, nothing started
            await pilot.pause(0.1)
            assert any(n.title == "cannot launch" for n in app._notifications)
            await pilot.press("down")  # the rest keep working
            await wait_until(pilot, lambda: screen.draft.path.name == "baseline.toml", what="baseline.toml")
            await pilot.pause(0.3)  # the fields come back on the next refresh
            await type_into(pilot, "#field-optim-lr Input", "0.002")
            assert screen.draft.edits == {"optim.lr": 0.002}
            await pilot.press("escape", "up")  # and back onto the broken one
            await wait_until(pilot, lambda: screen.draft.path.name == "aaa.toml", what="aaa.toml again")
            assert app.is_running and isinstance(app.screen, ExperimentsScreen)

    asyncio.run(scenario())


def _burst(pilot, text: str) -> None:
    """Keys as a fast typist (or a terminal without bracketed paste) sends them: no pause in between."""
    for char in text:
        key = {".": "full_stop", "-": "minus"}.get(char, char)
        event = events.Key(key, char)
        event.set_sender(pilot.app)
        pilot.app._driver.send_message(event)


@pytest.mark.parametrize("how", ["typed", "fast", "pasted"])
def test_a_field_shows_exactly_what_was_typed_and_saves_it(dirs: tuple[Path, Path], how: str) -> None:
    exps, runs = dirs
    path = exps / "baseline.toml"

    async def enter(pilot, selector: str, text: str) -> None:
        box = pilot.app.screen.query_one(selector, Input)
        box.focus()
        await pilot.press("end", "ctrl+u")
        if how == "typed":
            await pilot.press(*text)
        elif how == "fast":
            _burst(pilot, text)
        else:
            pilot.app._driver.send_message(events.Paste(text))
        await wait_until(
            pilot,
            lambda: box.value == text and pilot.app.screen.draft.raw.get(box.parent.parent.spec.key) == text,
            what=f"{text!r} in the field",
        )  # every queued edit handled
        await pilot.pause(0.1)
        assert box.value == text and box.cursor_position == len(text)

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30)) as pilot:
            screen = await _ready(pilot)
            await enter(pilot, "#field-optim-lr Input", "0.00105")  # starts as the file's 0.001
            await enter(pilot, "#field-optim-grad_clip Input", "10.5")  # starts as the file's 10.0
            await enter(pilot, "#field-train-epochs Input", "50")  # the file's value: no edit
            assert screen.draft.edits == {"optim.lr": 0.00105, "optim.grad_clip": 10.5}
            assert screen.query_one("#field-train-epochs Input").value == "50"
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), what="the diff")
            await pilot.press("y")
            await wait_until(pilot, lambda: not screen.draft.dirty, what="the save")
            assert screen.query_one("#field-optim-lr Input").value == "0.00105"

    asyncio.run(scenario())
    text = path.read_text()
    assert "lr = 0.00105 " in text and "grad_clip = 10.5 " in text and "epochs = 50\n" in text


def test_leaving_a_field_shows_the_value_it_stands_for(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs

    async def scenario() -> None:
        async with SurgApp(exps, runs).run_test(size=(100, 30)) as pilot:
            screen = await _ready(pilot)
            await type_into(pilot, "#field-optim-grad_clip Input", "10")  # the file says 10.0
            assert screen.query_one("#field-optim-grad_clip Input").value == "10"  # as typed, while in it
            assert not screen.draft.dirty and "*" not in str(
                screen.query_one("#field-optim-grad_clip .field-label", Label).render()
            )
            await pilot.press("tab")
            await pilot.pause(0.1)
            assert screen.query_one("#field-optim-grad_clip Input").value == "10.0"

    asyncio.run(scenario())


@pytest.mark.parametrize("answer", ["escape", "s", "d"])
def test_quit_with_unsaved_edits_asks_save_discard_or_cancel(dirs: tuple[Path, Path], answer: str) -> None:
    exps, runs = dirs
    path = exps / "baseline.toml"
    before = path.read_text()

    async def scenario() -> None:
        app = SurgApp(exps, runs)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await _ready(pilot)
            await type_into(pilot, "#field-optim-lr Input", "0.002")
            await pilot.press("ctrl+q")
            await pilot.pause(0.1)
            assert isinstance(app.screen, QuitScreen) and app.is_running
            assert "+" + LR_LINE.replace("0.001", "0.002") in app.screen.body.plain  # what would be saved
            await pilot.press(answer)
            await pilot.pause(0.2)
            if answer == "escape":
                assert app.is_running and app.screen is screen and screen.draft.edits == {"optim.lr": 0.002}
            else:
                assert app._exit

    asyncio.run(scenario())
    saved = before.replace(LR_LINE, LR_LINE.replace("0.001", "0.002"))
    assert path.read_text() == (saved if answer == "s" else before)


def test_quit_refuses_to_save_an_invalid_edit_and_stays(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs
    before = (exps / "baseline.toml").read_text()

    async def scenario() -> None:
        app = SurgApp(exps, runs)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            screen = await _ready(pilot)
            await type_into(pilot, "#field-model-img_size Input", "100")
            await pilot.press("ctrl+q")
            await pilot.pause(0.1)
            assert "cannot be saved" in app.screen.body.plain
            await pilot.press("s")
            await pilot.pause(0.2)
            assert app.is_running and not app._exit and screen.draft.errors
            assert any("multiple of 32" in n.message for n in app._notifications)
            await pilot.press("ctrl+q", "d")
            await pilot.pause(0.2)
            assert app._exit

    asyncio.run(scenario())
    assert (exps / "baseline.toml").read_text() == before


def test_quit_without_edits_quits_at_once(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs

    async def scenario() -> None:
        app = SurgApp(exps, runs)
        async with app.run_test(size=(100, 30)) as pilot:
            await _ready(pilot)
            await type_into(pilot, "#field-train-epochs Input", "50")  # the file's own value: no edit
            await pilot.press("ctrl+q")
            await pilot.pause(0.1)
            assert app._exit

    asyncio.run(scenario())


def test_an_empty_folder_says_how_to_make_an_experiment(tmp_path: Path) -> None:
    exps = tmp_path / "experiments"
    exps.mkdir()

    async def scenario() -> None:
        app = SurgApp(exps, tmp_path / "runs")
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            form = app.screen.query_one("#experiment-form")
            problem = app.screen.query_one("#form-problem", Static)
            await wait_until(pilot, lambda: "surgtui new NAME" in str(problem.render()), what="the hint")
            assert not any(row.display for row in form.query("FieldRow").results())  # no made-up defaults
            for key in ("ctrl+s", "ctrl+l", "ctrl+n"):
                await pilot.press(key)
            await pilot.pause(0.1)
            assert len([n for n in app._notifications if "surgtui new NAME" in n.message]) == 3
            assert app.screen.query_one(ExperimentList).row_count == 0
            (exps / "mine.toml").write_text(EXPERIMENTS["smoke"].replace('"smoke"', '"mine"'))
            await wait_until(
                pilot,
                lambda: app.screen.draft is not None,
                timeout=5,
                what="the new file, without switching screens",
            )
            assert app.screen.draft.path.name == "mine.toml"

    asyncio.run(scenario())


@pytest.mark.usefixtures("stand_in")
def test_save_and_launch_writes_the_edits_then_runs_them(dirs: tuple[Path, Path]) -> None:
    exps, runs = dirs

    async def scenario() -> None:
        app = SurgApp(exps, runs)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await _ready(pilot)
            await pilot.press("down", "down")
            await wait_until(pilot, lambda: screen.draft.path.name == "smoke.toml", what="smoke.toml")
            await type_into(pilot, "#field-optim-lr Input", "0.003")
            await pilot.press("ctrl+l")
            await wait_until(pilot, lambda: isinstance(app.screen, LaunchEditedScreen), what="the question")
            await pilot.press("s")
            await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), what="the monitor")
            run_dir = app.screen.run_dir
            try:
                assert "lr = 0.003" in (exps / "smoke.toml").read_text()
                assert "lr = 0.003" in (run_dir / "config.toml").read_text()
                assert not screen.draft.dirty
            finally:
                launcher.signal_run(Run.load(run_dir), signal.SIGKILL)

    asyncio.run(scenario())
