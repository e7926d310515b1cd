"""Keeping runs: tags, notes, `runs --where/--columns`, the trash (`rm`, `restore`, `rm --purge`), from the
CLI and from the UI's runs screen. The runs are real run directories with full event histories."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import one_line_error, surgtui
from surgtui.runs.store import list_runs
from surgtui.tui.app import SurgApp
from surgtui.tui.screens.confirm import ConfirmScreen
from surgtui.tui.screens.prompt import PromptScreen
from surgtui.tui.widgets.runs_table import RunsTable
from test_tui_fixtures import copy_experiments, wait_until, write_runs


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    write_runs(tmp_path / "runs")
    return tmp_path / "runs"


def _csv(r: subprocess.CompletedProcess) -> list[dict[str, str]]:
    assert r.returncode == 0, r.stderr
    return list(csv.DictReader(io.StringIO(r.stdout)))


def test_tags_notes_and_filters_from_the_cli(runs_dir: Path) -> None:
    smoke, focal, stopped, failed, crashed = [r.id for r in list_runs(runs_dir)]
    rd = ("--runs-dir", str(runs_dir))
    assert surgtui("tag", focal, "owner=ana", "data=v2", *rd).stdout.strip() == "owner=ana data=v2"
    assert surgtui("note", focal, "lr 0.003 looks better", *rd).returncode == 0
    shown = surgtui("show", focal, *rd).stdout
    assert "tags: owner=ana  data=v2" in shown and "note: lr 0.003 looks better" in shown

    rows = _csv(
        surgtui(
            "runs", "-f", "csv", "--where", "status=finished", "--where", "optim.lr>0.002",
            "--columns", "optim.lr,tags.owner", *rd,
        )
    )  # fmt: skip
    assert [(r["id"], r["optim.lr"], r["tags.owner"], r["note"]) for r in rows] == [
        (focal, "0.003", "ana", "lr 0.003 looks better")
    ]
    finished = {
        r["id"] for r in _csv(surgtui("runs", "-f", "csv", "-w", "map50_95>=0", "-w", "status=finished", *rd))
    }
    assert finished == {smoke, focal}
    assert {r["id"] for r in _csv(surgtui("runs", "-f", "csv", "-w", "tags.owner!=ana", *rd))} == {
        smoke, stopped, failed, crashed,
    }  # fmt: skip
    line = one_line_error(surgtui("runs", "--where", "optim.lr~0.1", *rd))
    assert "--where 'optim.lr~0.1'" in line and "OP one of" in line
    assert "unknown key 'optim.rate'" in one_line_error(surgtui("runs", "--columns", "optim.rate", *rd))
    assert "expected KEY=VALUE" in one_line_error(surgtui("tag", focal, "no value", *rd))


def test_rm_moves_runs_to_the_trash_and_restore_brings_them_back(runs_dir: Path) -> None:
    smoke, focal, *_ = [r.id for r in list_runs(runs_dir)]
    before = sorted(p.relative_to(runs_dir / focal) for p in (runs_dir / focal).rglob("*"))
    rd = ("--runs-dir", str(runs_dir))
    r = surgtui("rm", smoke, focal, *rd)
    assert r.returncode == 0 and r.stdout.splitlines() == [
        f"moved {smoke} to the trash",
        f"moved {focal} to the trash",
    ]
    assert {run.id for run in list_runs(runs_dir)}.isdisjoint({smoke, focal})
    trashed = json.loads(surgtui("runs", "--trash", "-f", "json", *rd).stdout)
    assert [t["id"] for t in trashed] == [smoke, focal] and trashed[1]["status"] == "finished"
    assert "no run 'nope'" in one_line_error(surgtui("restore", "nope", *rd))

    assert surgtui("restore", focal, *rd).stdout.strip() == f"restored {focal}"
    assert sorted(p.relative_to(runs_dir / focal) for p in (runs_dir / focal).rglob("*")) == before
    assert surgtui("rm", "--purge", *rd).stdout.startswith(f"deleted 1 runs for good: {smoke}")
    assert not (runs_dir / ".trash" / smoke).exists() and (runs_dir / focal).is_dir()
    assert "the trash is empty" in one_line_error(surgtui("restore", smoke, *rd))


def test_rm_refuses_a_running_run_and_moves_nothing(runs_dir: Path) -> None:
    smoke = list_runs(runs_dir)[0]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a live engine as the store sees one: its pid and start time in run.json, the lock held
        from surgtui.runs.lock import acquire_engine_lock, proc_start_time, write_lock_owner
        from surgtui.runs.store import update_run_json

        lock = acquire_engine_lock(smoke.path)
        write_lock_owner(lock, sleeper.pid)
        update_run_json(
            smoke.path, pid=sleeper.pid, pgid=sleeper.pid, proc_start=proc_start_time(sleeper.pid)
        )
        line = one_line_error(surgtui("rm", smoke.id, list_runs(runs_dir)[1].id, "--runs-dir", str(runs_dir)))
        assert f"run {smoke.id} is running" in line
        assert len(list_runs(runs_dir)) == 5 and not (runs_dir / ".trash").exists()
        os.close(lock)
    finally:
        sleeper.kill()


def test_the_runs_screen_notes_tags_and_trashes_with_confirmation(tmp_path: Path, runs_dir: Path) -> None:
    exps = copy_experiments(tmp_path / "experiments")
    newest_first = [r.id for r in reversed(list_runs(runs_dir))]

    async def scenario() -> None:
        async with SurgApp(exps, runs_dir).run_test(size=(120, 30)) as pilot:
            await pilot.press("f3")
            table = pilot.app.screen.query_one(RunsTable)
            await wait_until(pilot, lambda: table.row_count == 5, what="five runs")
            table.move_cursor(row=1)  # the failed run
            await pilot.press("n")
            assert isinstance(pilot.app.screen, PromptScreen)
            await pilot.press(*"nan at step 19", "enter")
            await pilot.press("t")
            await pilot.press(*"why=nan", "enter")
            await wait_until(
                pilot, lambda: "nan at step 19" in str(table.get_cell(newest_first[1], "note")), what="note"
            )
            assert str(table.get_cell(newest_first[1], "tags")) == "why=nan"

            await pilot.press("space", "space")  # mark the failed and the stopped run
            await pilot.press("delete")
            assert isinstance(pilot.app.screen, ConfirmScreen)
            await pilot.press("n")  # no: nothing moves
            assert len(list_runs(runs_dir)) == 5
            await pilot.press("delete", "y")
            await wait_until(pilot, lambda: table.row_count == 3, what="three runs left")
            assert set(newest_first[1:3]).isdisjoint(row.key.value for row in table.ordered_rows)

    asyncio.run(scenario())
    trashed = list_runs(runs_dir / ".trash")
    assert sorted(r.id for r in trashed) == sorted(newest_first[1:3])
    failed = next(r for r in trashed if r.id == newest_first[1])
    assert (failed.path / "note.txt").read_text() == "nan at step 19\n" and failed.tags == {"why": "nan"}
