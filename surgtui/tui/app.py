"""The Textual app behind `surgtui launch`.

The app owns what outlives a screen: the engine processes it started (reaped so
they leave no zombies, never killed: quitting the UI leaves runs running) and the
screen stack. Screens post requests up (messages.py); the app answers them.
Three modes keep their own stacks: experiments (the editor), runs (the table) and
sweeps; a monitor or comparison is pushed on top of the current one.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.screen import Screen

from surgtui.config.load import load_experiment
from surgtui.errors import ConfigError, UserError
from surgtui.runs.launcher import launch_run, signal_run, wait_exit
from surgtui.runs.store import Run, list_runs
from surgtui.tui import keymap
from surgtui.tui.messages import CompareRuns, LaunchExperiment, OpenRun, StopRun, StopSweep
from surgtui.tui.screens.choice import QuitScreen
from surgtui.tui.screens.compare import CompareScreen
from surgtui.tui.screens.confirm import ConfirmScreen
from surgtui.tui.screens.experiments import ExperimentsScreen
from surgtui.tui.screens.help import HelpScreen
from surgtui.tui.screens.monitor import MonitorScreen
from surgtui.tui.screens.runs import RunsScreen
from surgtui.tui.screens.sweeps import SweepsScreen
from surgtui.tui.workers import background

REAP_S = 1.0


class SurgApp(App[None]):
    CSS_PATH = Path(__file__).with_name("styles.tcss")  # absolute: subclasses elsewhere find it too
    TITLE = "surgtui"
    BINDINGS = keymap.APP

    def __init__(self, experiments_dir: Path, runs_dir: Path) -> None:
        super().__init__()
        self.experiments_dir = Path(experiments_dir)
        self.runs_dir = Path(runs_dir)
        self.engines: list[tuple[subprocess.Popen, Path]] = []  # started here: reaped, never killed
        self.experiments_screen: ExperimentsScreen | None = None  # holds the unsaved edits quit asks about
        self.add_mode("experiments", self._make_experiments_screen)
        self.add_mode("runs", lambda: RunsScreen(self.runs_dir))
        self.add_mode("sweeps", lambda: SweepsScreen(self.runs_dir))

    def _make_experiments_screen(self) -> ExperimentsScreen:
        self.experiments_screen = ExperimentsScreen(self.experiments_dir, self.runs_dir)
        return self.experiments_screen

    def on_mount(self) -> None:
        if not self.is_headless and self.console.color_system in ("standard", "windows"):
            self.theme = "ansi-dark"  # the terminal's own 16 colours: nothing gets mapped to a near miss
        self.switch_mode("experiments")
        self.set_interval(REAP_S, self.reap)
        self._announce_running()

    @background(group="startup", what="listing running runs", exclusive=False)
    def _announce_running(self) -> None:
        """Reopening the UI finds the runs that kept going while it was closed."""
        running = [r for r in list_runs(self.runs_dir) if r.status == "running"]
        if running:
            n = len(running)
            self.notify(f"{n} run{'s' * (n != 1)} running, newest {running[-1].id}: F4 follows it")

    # ------------------------------------------------------------ requests from screens

    def on_launch_experiment(self, message: LaunchExperiment) -> None:
        run_dir = self.launch(message.path)
        if run_dir is not None:
            self.push_screen(MonitorScreen(run_dir))

    def launch(self, path: Path) -> Path | None:
        """Exactly `surgtui run --detach`: resolve (env overrides included), freeze, start detached."""
        try:
            resolved = load_experiment(path)
        except ConfigError as exc:
            self.notify(str(exc), title="cannot launch", severity="error", markup=False)
            return None
        try:
            run_dir, proc = launch_run(resolved.experiment, resolved.to_toml(), self.runs_dir, str(path))
        except (OSError, UserError) as exc:  # a runs dir that cannot hold runs, a data source that is a file
            self.notify(str(exc), title="launch failed", severity="error", markup=False)
            return None
        self.engines.append((proc, run_dir))
        for note in resolved.notes:
            self.notify(note, title="override", markup=False)
        return run_dir

    def on_open_run(self, message: OpenRun) -> None:
        self.push_screen(MonitorScreen(message.run_dir))

    def on_compare_runs(self, message: CompareRuns) -> None:
        self.push_screen(CompareScreen(message.run_dirs))

    def on_stop_run(self, message: StopRun) -> None:
        run_dir = message.run_dir

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                sent = signal_run(Run.load(run_dir), signal.SIGINT)
            except UserError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            if sent:
                self.notify(f"stopping {run_dir.name}: it finishes its step and saves last.pt")
            else:
                self.notify(f"{run_dir.name} is not running", severity="warning")

        self.push_screen(
            ConfirmScreen(
                f"Stop {run_dir.name}?",
                "The engine finishes the current step, saves weights/last.pt and ends 'stopped'.\n"
                "It can be resumed later with `surgtui resume`.",
                yes="Stop run",
                no="Keep running",
            ),
            answered,
        )

    def on_stop_sweep(self, message: StopSweep) -> None:
        sweep_dir = message.sweep_dir

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            from surgtui.sweeps.store import stop_sweep  # lazily, as the sweeps screen reads sweeps

            try:
                sent = stop_sweep(sweep_dir)
            except OSError as exc:  # a scheduler of another user, a sweep directory gone read-only
                self.notify(f"{sweep_dir.name}: {exc}", severity="error", markup=False)
                return
            if sent:
                self.notify(f"stopping sweep {sweep_dir.name}: its running members stop, then the scheduler")
            else:
                self.notify(f"sweep {sweep_dir.name} is not running", severity="warning")

        self.push_screen(
            ConfirmScreen(
                f"Stop sweep {sweep_dir.name}?",
                "Its scheduler stops the running members (each finishes its step, saves weights/last.pt\n"
                "and ends 'stopped'), then itself. Finished members are kept; "
                f"`surgtui sweep resume {sweep_dir.name}`\ncontinues it later.",
                yes="Stop sweep",
                no="Keep running",
            ),
            answered,
        )

    # ------------------------------------------------------------ actions

    async def action_quit(self) -> None:
        """Quit; with unsaved edits, ask first: save, discard or cancel (the runs keep running either way)."""
        editor = self.experiments_screen
        unsaved = editor.unsaved() if editor is not None else []
        if editor is None or not unsaved:
            self.exit()
            return
        if isinstance(self.screen, QuitScreen):
            return  # already asking

        def answered(choice: str | None) -> None:
            if choice == "discard" or (choice == "save" and editor.save_all()):
                self.exit()

        names = ", ".join(d.path.name for d in unsaved)
        self.push_screen(
            QuitScreen(f"Unsaved edits in {names}. Save them before quitting?", editor.unsaved_diff()),
            answered,
        )

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_show_experiments(self) -> None:
        await self._show_mode("experiments")

    async def action_show_runs(self) -> None:
        await self._show_mode("runs")

    async def action_show_sweeps(self) -> None:
        await self._show_mode("sweeps")

    async def _show_mode(self, mode: str) -> None:
        """The mode's own screen: from a monitor or comparison opened in that mode too."""
        if self.current_mode != mode:
            await self.switch_mode(mode)
        while len(self.screen_stack) > 1:
            await self.pop_screen()

    def action_follow_latest(self) -> None:
        runs = list_runs(self.runs_dir)
        running = [r for r in runs if r.status == "running"]
        target = (running or runs or [None])[-1]
        if target is None:
            self.notify("no runs yet: launch one from an experiment (ctrl+l)", severity="warning")
        elif isinstance(self.screen, MonitorScreen) and self.screen.run_dir == target.path:
            self.notify(f"already following the newest {'running ' * bool(running)}run, {target.id}")
        else:
            self.push_screen(MonitorScreen(target.path))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide keys that lead where the user already is (F4 on the runs screen too: enter opens a run).

        The footer has no room to spare at 80 columns.
        """
        redundant_on = {
            "show_experiments": ExperimentsScreen,
            "show_runs": RunsScreen,
            "show_sweeps": SweepsScreen,
            "follow_latest": RunsScreen,
        }
        return not isinstance(self.screen, redundant_on.get(action, ()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Experiments", "Edit and launch experiment files (F2)", self.action_show_experiments
        )
        yield SystemCommand("Runs", "All runs: sort, filter, mark, compare (F3)", self.action_show_runs)
        yield SystemCommand(
            "Sweeps", "Sweeps: configurations, mean ± std over seeds, curves (F5)", self.action_show_sweeps
        )
        yield SystemCommand(
            "Follow latest run", "Monitor the newest running run (F4)", self.action_follow_latest
        )
        yield SystemCommand("Key bindings", "Every key of every screen (?)", self.action_help)
        for title, help_text, callback in getattr(screen, "palette_commands", list)():
            yield SystemCommand(title, help_text, callback)

    def reap(self, ended_wait_s: float = 0.0) -> None:
        """Collect exit codes of engines this UI started (else they linger as zombies).

        `ended_wait_s`: how long to wait for an engine whose run has already ended (it is exiting).
        """
        for proc, run_dir in list(self.engines):
            if proc.poll() is None and ended_wait_s and Run.load(run_dir).status != "running":
                wait_exit(proc, run_dir, timeout=ended_wait_s)
            if proc.poll() is not None:
                wait_exit(proc, run_dir)
                self.engines.remove((proc, run_dir))


def run_app(experiments_dir: Path, runs_dir: Path, mouse: bool = True) -> None:
    """Entry point of `surgtui launch`."""
    app = SurgApp(experiments_dir, runs_dir)
    app.run(mouse=mouse)
    app.reap(ended_wait_s=5.0)  # a run that ended just before the quit still gets its exit code
