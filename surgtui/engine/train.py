"""The training loop behind `python -m surgtui.engine RUN_DIR [--resume]`.

Reads RUN_DIR/config.toml, appends events to RUN_DIR/events.jsonl, writes
RUN_DIR/weights/{last,best}.pt. Exits with `surgtui.errors.ExitCode`: OK finished, STOPPED
(SIGINT or SIGTERM), FAILED, USAGE (bad config, missing weights or data).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from surgtui.config.load import load_frozen
from surgtui.config.schema import Experiment
from surgtui.engine import faults
from surgtui.engine.anchors import check_anchors, dataset_wh
from surgtui.engine.checkpoint import (
    CHECKPOINT_VERSION,
    load_checkpoint,
    model_weights,
    rng_state,
    save_checkpoint,
    set_rng_state,
    shareable_weights,
)
from surgtui.engine.datasets import build_datasets, collate
from surgtui.engine.evaluate import evaluate
from surgtui.engine.loss import COMPONENTS, DetectionLoss, targets_to_tensor
from surgtui.engine.model import Detector, build_model
from surgtui.engine.optim import ModelEMA, backbone_lr_mult, build_optimizer, group_lrs
from surgtui.engine.runtime import (
    Dist,
    StopFlag,
    die_with_parent,
    parameter_digest,
    resolve_device,
    seed_everything,
)
from surgtui.engine.sampler import EpochSampler
from surgtui.engine.schedule import apply_lr
from surgtui.errors import ExitCode, UserError, exit_code_for, one_line
from surgtui.fileio import remove_stale_temps
from surgtui.runs.events import EventWriter
from surgtui.runs.layout import (
    BEST_WEIGHTS,
    CONFIG_FILE,
    LAST_WEIGHTS,
    MODEL_WEIGHTS,
    STOP_REASON_FILE,
    WEIGHTS_DIR,
)
from surgtui.runs.lock import take_engine_lock
from surgtui.runs.metrics import BEST_METRIC
from surgtui.runs.rows import flatten


class _TooManyBadSteps(Exception):
    def __init__(self, batches_done: int, reason: str) -> None:
        super().__init__(reason)
        self.batches_done = batches_done


class _NoEvents:
    """Stands in for the EventWriter on the ranks after the first of each machine."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


_lock_fd: int | None = None  # the run's engine lock, held by the main process only

# Keys the nodes of one run may set apart: this machine's paths, devices and role, and what rank 0 alone uses.
PER_NODE_KEYS = (
    "name",
    "description",
    "train.node_rank",
    "train.rdzv_endpoint",
    "train.device",
    "train.workers",
    "data.source",
    "data.cache_dir",
    "model.init_from",
    "logging.*",
)


def _per_node(key: str) -> bool:
    return key in PER_NODE_KEYS or f"{key.split('.')[0]}.*" in PER_NODE_KEYS


def _changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """`key old -> new` for every flattened key whose value differs."""
    return ", ".join(
        f"{k} {old.get(k)!r} -> {new.get(k)!r}"
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    )


def _quiet_worker(worker_id: int) -> None:
    # Stop signals go to the whole process group: only the main process acts on them;
    # a worker dying on SIGINT would turn a clean stop into a DataLoader error.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _lock_fd is not None:  # a worker outliving a killed engine must not keep the run "running"
        os.close(_lock_fd)


class StepRunner:
    """One optimizer step: forward, loss, backward, clip, step, EMA. Shared by the loop and the benchmark."""

    def __init__(
        self, model: Detector, exp: Experiment, device: torch.device, dist: Dist | None = None
    ) -> None:
        cuda = device.type == "cuda"
        self.model, self.device, self.exp = model, device, exp
        self.dist = dist or Dist()
        self.forward_model: torch.nn.Module = model  # DDP wraps it; EMA and checkpoints use the bare model
        self.amp = cuda and exp.train.amp
        self.channels_last = cuda  # faster convs on tensor cores; slower on CPU (measured)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.ema = ModelEMA(model, exp.optim.ema_decay) if exp.optim.ema else None
        self.optimizer = build_optimizer(model, exp.optim, backbone_lr_mult(exp))
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.loss_fn = DetectionLoss(exp.loss, model.anchors, model.strides, model.nc, model.img_size)
        self.params = [p for p in model.parameters() if p.requires_grad]

    def __call__(self, images: torch.Tensor, targets: list[dict]) -> tuple[list[float], float, bool] | None:
        """Returns (loss components, grad norm before clipping, clipped); None (step skipped) when the
        loss or, without AMP, the gradient is not finite."""
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        tgt = targets_to_tensor(targets, self.device)
        with torch.autocast(self.device.type, enabled=self.amp):
            outputs = self.forward_model(images)
        total, parts = self.loss_fn(outputs, tgt)  # float32, outside autocast
        values = parts.tolist()  # the step's one host sync: finiteness check and logging together
        # Under DDP every rank must skip together, or the gradient all-reduce would wait forever.
        if self.dist.any(not math.isfinite(values[-1])):
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        clip = self.exp.optim.grad_clip
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip if clip > 0 else float("inf")))
        if not self.amp and not math.isfinite(norm):  # with AMP the scaler skips such steps itself
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema:
            self.ema.update(self.model)
        return values, norm, clip > 0 and norm > clip


class Trainer:
    """Holds everything a run needs; `fit()` trains and returns (status, reason)."""

    def __init__(
        self,
        run_dir: str | Path,
        exp: Experiment,
        events: Any,
        stop: StopFlag,
        resume: bool = False,
        dist: Dist | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.weights = self.run_dir / WEIGHTS_DIR
        self.exp, self.events, self.stop = exp, events, stop
        t = exp.train
        self.dist = dist or Dist()
        self.rank, self.world_size = self.dist.rank, self.dist.world_size
        if (t.devices > 1 or t.nodes > 1) and not self.dist.active:
            events.log(
                "warning",
                f"train.devices = {t.devices}, train.nodes = {t.nodes} but the engine was not started "
                "under torchrun (use `surgtui run`): training in one process",
            )
        self.device = resolve_device(t.device, "train.device", self.dist.local_rank)
        self.dist.init(self.device)
        cuda = self.device.type == "cuda"
        torch.backends.cudnn.benchmark = (
            cuda  # few input shapes (square mosaic, rect batches): cuDNN picks once each
        )
        self._notes: list[tuple[str, str]] = []  # (level, message) logged once run_start is out
        train_ds, val_ds = build_datasets(exp, lambda message: self._notes.append(("info", message)))
        if len(train_ds) == 0:
            raise UserError(f"data.source = {exp.data.source!r}: the training split is empty")
        if t.nodes > 1 and self.dist.active:
            self._meet_nodes(len(train_ds))
        seed_everything(t.seed)  # same seed on every rank: identical initial weights
        self.model: Detector = build_model(exp.model).to(self.device)
        if exp.model.init_from and not resume:  # a resumed run has these weights trained further
            self._init_from(Path(exp.model.init_from))
        if not resume:  # a resumed run keeps the anchors its checkpoint holds
            # Before the EMA copies the model: its anchors must be the ones trained with.
            anchors = check_anchors(
                dataset_wh(train_ds.records, exp.model.img_size),
                self.model.anchors,
                exp.loss.anchor_t,
                exp.model.autoanchor,
                lambda level, message: self._notes.append((level, message)),
            )
            if anchors is not None:
                self.model.anchors.copy_(anchors.to(self.model.anchors))
        self.runner = StepRunner(self.model, exp, self.device, self.dist)
        mult = backbone_lr_mult(exp)
        if mult != exp.optim.backbone_lr_mult:
            self._notes.append(
                (
                    "info",
                    f"backbone lr x{mult:g}, not optim.backbone_lr_mult = "
                    f"{exp.optim.backbone_lr_mult:g}: the backbone is trained from scratch "
                    "(model.pretrained = false)",
                )
            )
        else:
            self._notes.append(("info", f"backbone lr x{mult:g} (optim.backbone_lr_mult)"))
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            self.runner.forward_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if cuda else None
            )
        self.ema, self.optimizer, self.scaler = self.runner.ema, self.runner.optimizer, self.runner.scaler
        self.stopping = False  # the stop all ranks agreed on

        # Ultralytics' close_mosaic: the last epochs see whole frames, as validation and deployment do.
        mosaic_epochs = max(0, t.epochs - exp.data.augment.close_mosaic) if train_ds.uses_mosaic else None
        self.sampler = EpochSampler(len(train_ds), t.seed, self.rank, self.world_size, mosaic_epochs)
        common = dict(
            batch_size=t.batch_size,
            num_workers=t.workers,
            collate_fn=collate,
            pin_memory=cuda,
            persistent_workers=t.workers > 0,
            worker_init_fn=_quiet_worker,
        )
        self.train_loader = DataLoader(
            train_ds, sampler=self.sampler, generator=torch.Generator().manual_seed(t.seed), **common
        )
        self.val_loader = DataLoader(val_ds, shuffle=False, **common)
        self.steps_per_epoch = math.ceil(len(self.sampler) / t.batch_size)
        self.total_steps = self.steps_per_epoch * t.epochs

        self.step = 0  # global optimizer step (1-based once training starts)
        self.saved_step: int | None = None  # the step last.pt holds
        self.start_epoch, self.skip = 1, 0
        self.best: dict[str, Any] | None = None
        self.resumed_from: int | None = None
        self.bad_steps = 0  # non-finite steps in a row
        if resume:
            self._resume()

    def _meet_nodes(self, train_images: int) -> None:
        """The nodes say who they are; one whose experiment differs from node 0's fails every rank alike."""
        t = self.exp.train
        shared = {k: v for k, v in flatten(self.exp.to_dict()).items() if not _per_node(k)}
        shared["(training images)"] = train_images  # another copy of the data: other steps per epoch
        mine = {"node": t.node_rank, "host": socket.gethostname(), "run": self.run_dir.name, "config": shared}
        nodes = {peer["node"]: peer for peer in self.dist.gather(mine)}
        first = nodes[0]  # always there: node 0 hosts the rendezvous
        for node, peer in sorted(nodes.items()):
            if changed := _changes(first["config"], peer["config"]):
                raise UserError(
                    f"node {node}'s experiment differs from node 0's ({changed}); every node must train "
                    f"the same one (only {', '.join(PER_NODE_KEYS)} may differ)"
                )
        if t.node_rank == 0:
            who = ", ".join(f"node {n} {p['host']} run {p['run']}" for n, p in sorted(nodes.items()))
            self._notes.append(("info", f"{t.nodes} nodes x {t.devices} devices: {who}"))
        else:
            self._notes.append(
                (
                    "info",
                    f"node {t.node_rank} of {t.nodes}: validation, checkpoints and metrics are in node 0's "
                    f"run {first['run']} on {first['host']}",
                )
            )

    def _init_from(self, path: Path) -> None:
        """Start from another run's weights (`model.init_from`): the model only; optimizer and schedule start anew."""
        ck = load_checkpoint(path, "cpu")
        try:
            self.model.load_state_dict(model_weights(ck))
        except RuntimeError:  # another backbone or neck: the shapes do not fit
            theirs = ck["config"].get("model", {}) if isinstance(ck.get("config"), dict) else {}
            raise UserError(
                f"model.init_from = {str(path)!r}: its model ({theirs.get('backbone')}, neck_width "
                f"{theirs.get('neck_width')}, neck_depth {theirs.get('neck_depth')}) does not fit this run's "
                f"({self.exp.model.backbone}, {self.exp.model.neck_width}, {self.exp.model.neck_depth})"
            ) from None
        self._notes.append(
            (
                "info",
                f"weights from {path} (epoch {ck.get('epoch')}, step {ck.get('step')}); optimizer starts anew",
            )
        )

    # ---- checkpoints -------------------------------------------------------------------------

    def _state(self, epoch: int, batches_done: int) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "batches_done": batches_done,
            "steps_per_epoch": self.steps_per_epoch,
            "step": self.step,
            "best": self.best,
            "config": self.exp.to_dict(),
            "rng": rng_state(),
        }

    def _save(self, epoch: int, batches_done: int, best: bool = False) -> None:
        if self.rank != 0:
            return
        state = self._state(epoch, batches_done)
        # best.pt first: a kill between the two leaves best.pt a save ahead, and resume starts from it;
        # the other order would leave best.pt an improvement behind what the run reports.
        if best:
            save_checkpoint(self.weights / BEST_WEIGHTS, state)
            save_checkpoint(self.weights / MODEL_WEIGHTS, shareable_weights(state))
            self.events.checkpoint(epoch, f"{WEIGHTS_DIR}/{BEST_WEIGHTS}", True)  # relative to the run dir
            faults.hit("checkpoint:between")
        save_checkpoint(self.weights / LAST_WEIGHTS, state)
        self.saved_step = self.step
        self.events.checkpoint(epoch, f"{WEIGHTS_DIR}/{LAST_WEIGHTS}", False)

    def _newest_checkpoint(self) -> Path:
        """last.pt, or best.pt when a kill between the two writes left best.pt a save ahead (or alone).

        Both hold the whole training state, so resuming from best.pt then redoes nothing.
        """
        last, best = self.weights / LAST_WEIGHTS, self.weights / BEST_WEIGHTS
        if not best.is_file():
            return last
        if not last.is_file():
            return best
        try:
            best_step = load_checkpoint(best, "cpu", mmap=True).get("step", -1)
        except UserError:
            return last
        try:
            last_step = load_checkpoint(last, "cpu", mmap=True).get("step", -1)
        except UserError:
            return best  # last.pt damaged: best.pt is a whole state too
        return best if best_step > last_step else last

    def _checkpoint_to_resume(self) -> tuple[Path, dict[str, Any]]:
        """Rank 0 reads the newest checkpoint and the other ranks get it from rank 0: on other
        machines they cannot read node 0's run directory, and need no copy of it."""
        sent: tuple[Path | None, dict[str, Any] | None, str] = (None, None, "")
        error: Exception | None = None
        if self.rank == 0:
            try:
                path = self._newest_checkpoint()
                if not path.is_file():
                    raise UserError(f"--resume: no checkpoint to resume from at {path}")
                # On the CPU: picklable to the other ranks, and load_state_dict moves it where it belongs.
                sent = (path, load_checkpoint(path, "cpu"), "")
            except Exception as exc:
                if not self.dist.active:
                    raise
                sent, error = (None, None, one_line(exc)), exc  # the other ranks must not wait for it
        path, ck, failed = self.dist.from_rank0(sent)
        if error is not None:
            raise error
        if failed:
            raise UserError(f"{failed} (on node 0)")
        assert path is not None and ck is not None
        return path, ck

    def _resume(self) -> None:
        path, ck = self._checkpoint_to_resume()
        if path.name != LAST_WEIGHTS:
            self._notes.append(
                (
                    "info",
                    f"resuming from {WEIGHTS_DIR}/{path.name} (step {ck.get('step')}): "
                    f"{LAST_WEIGHTS} is missing or older",
                )
            )
        if ck.get("version", 1) < CHECKPOINT_VERSION:
            self._notes.append(
                (
                    "info",
                    f"{WEIGHTS_DIR}/{path.name} is a version-{ck.get('version', 1)} checkpoint; the next save "
                    f"writes version {CHECKPOINT_VERSION}",
                )
            )
        if not isinstance(ck.get("steps_per_epoch"), int) or "optimizer" not in ck:
            raise UserError(f"--resume: {path} holds weights only (no optimizer state); it cannot be resumed")
        if ck["steps_per_epoch"] != self.steps_per_epoch:
            raise UserError(
                f"--resume: {path} has {ck['steps_per_epoch']} steps per epoch, the config gives "
                f"{self.steps_per_epoch} (batch size or data changed); start a new run"
            )
        # Resumed from best.pt: last.pt holds the newest state from here on, even with no epoch left,
        # and model.pt best.pt's weights (a kill may have come between the two files).
        if path.name != LAST_WEIGHTS and self.rank == 0:
            save_checkpoint(self.weights / LAST_WEIGHTS, ck)
            save_checkpoint(self.weights / MODEL_WEIGHTS, shareable_weights(ck))
        old, new = flatten(ck["config"]), flatten(self.exp.to_dict())
        if self.exp.train.node_rank > 0:  # the checkpoint is node 0's: its own keys are not a change
            old.update({k: v for k, v in new.items() if _per_node(k)})
        if changed := _changes(old, new):
            self.events.log(
                "warning",
                f"{CONFIG_FILE} differs from the checkpoint's config ({changed}); using {CONFIG_FILE}",
            )
        self.model.load_state_dict(ck["model"])
        if self.ema and ck["ema"]:
            self.ema.load_state_dict(ck["ema"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scaler.load_state_dict(ck["scaler"])
        set_rng_state(ck["rng"])
        self.step, self.best = ck["step"], ck["best"]
        self.resumed_from = self.saved_step = self.step
        done = ck["batches_done"] >= self.steps_per_epoch
        self.start_epoch = ck["epoch"] + 1 if done else ck["epoch"]
        self.skip = 0 if done else ck["batches_done"]

    # ---- the loop ----------------------------------------------------------------------------

    def fit(self) -> tuple[str, str]:
        t = self.exp.train
        self.events.run_start(
            run_id=self.run_dir.name,
            experiment=self.exp.name,
            config=self.exp.to_dict(),
            device=str(self.device),
            world_size=self.world_size,
            params=self.model.param_counts(),
            epochs=t.epochs,
            steps_per_epoch=self.steps_per_epoch,
            total_steps=self.total_steps,
            resumed_from_step=self.resumed_from,
        )
        for level, message in self._notes:
            self.events.log(level, message)
        epoch = self.start_epoch
        for epoch in range(self.start_epoch, t.epochs + 1):
            if self._agree_stop():
                break
            skip = self.skip if epoch == self.start_epoch else 0
            t_epoch = time.time()
            try:
                batches, mean_loss = self.train_epoch(epoch, skip)
            except _TooManyBadSteps as exc:
                self._save(epoch, exc.batches_done)
                return "failed", str(exc)
            if batches < self.steps_per_epoch:  # stopped in the middle of the epoch
                self._save(epoch, batches)
                break
            self.events.epoch_end(epoch, mean_loss, time.time() - t_epoch)
            improved = False
            if not self.stopping and (epoch % t.val_every == 0 or epoch == t.epochs):
                improved = self.validate(epoch)
            self._save(epoch, batches, best=improved)
            print(f"epoch {epoch}/{t.epochs} done, step {self.step}", flush=True)
            reason = self._early_stop(epoch)
            if self.dist.any(reason is not None):  # rank 0 validates and holds `best`: its call stops all
                self._check_ranks_agree()
                return "finished", reason or "early stop"
        self._check_ranks_agree()
        if self.stopping and self.saved_step != self.step:  # stopped before the first step: resumable too
            self._save(epoch, self.skip)
        if self.stopping:
            why = f"{self.stop.signal_name or 'stop'} received"
            with contextlib.suppress(OSError):  # a sweep's pruner says why it stopped this run
                why = (self.run_dir / STOP_REASON_FILE).read_text(encoding="utf-8").strip() or why
            saved = "saved" if self.rank == 0 else "saved by node 0"
            return "stopped", f"{why}; {LAST_WEIGHTS} {saved} at step {self.step}"
        return "finished", ""  # the contract: reason is empty when finished (but for an early stop)

    def _early_stop(self, epoch: int) -> str | None:
        """`train.patience` epochs without a better best metric: why training ends here; None to go on."""
        patience = self.exp.train.patience
        if not patience or self.best is None or epoch >= self.exp.train.epochs:
            return None
        since = epoch - self.best["epoch"]
        if since < patience:
            return None
        return (
            f"early stop: {self.best['metric']} not better for {since} epochs (train.patience = {patience}); "
            f"best {self.best['value']:.4f} at epoch {self.best['epoch']}"
        )

    def _agree_stop(self) -> bool:
        """A stop seen by any rank stops every rank at the same step."""
        self.stopping = self.stopping or self.dist.any(self.stop.requested)
        return self.stopping

    def _check_ranks_agree(self) -> None:
        if not self.dist.active:
            return
        same = self.dist.same_parameters(self.model)
        self.events.log(
            "info" if same else "error",
            f"DDP: parameters {'identical' if same else 'DIFFER'} on all {self.world_size} ranks",
        )
        # This rank's own hash: each machine's run records it, so two nodes' runs can be compared.
        self.events.log("info", f"DDP: parameter digest {parameter_digest(self.model)} on rank {self.rank}")

    def train_epoch(self, epoch: int, skip: int) -> tuple[int, dict[str, float]]:
        """Train one epoch from batch `skip`; returns (batches done, mean loss components).

        Stops early (fewer batches) when a stop was requested.
        """
        t, log_every = self.exp.train, self.exp.logging.log_every
        if not skip:  # per-epoch seeding: augmentation does not depend on how we got here
            seed_everything(t.seed * 100_003 + epoch)
        # Loader workers take their seeds from this generator: per epoch too, so resuming at an epoch is exact.
        self.train_loader.generator.manual_seed(t.seed * 100_003 + epoch)
        self.sampler.set_epoch(epoch, skip * t.batch_size)
        self.model.train()
        sums, n_ok, batch = np.zeros(len(COMPONENTS)), 0, skip
        t_win, imgs_win = time.time(), 0
        for batch, (images, targets) in enumerate(self.train_loader, start=skip + 1):
            self.step += 1
            apply_lr(self.optimizer, self.step, self.total_steps, self.exp.schedule)
            result = self.runner(images, targets)
            faults.hit("step")
            stopping = self._agree_stop()
            imgs_win += len(images) * self.world_size
            if result is None:
                self.bad_steps += 1
                self.events.log(
                    "warning",
                    f"step {self.step}: non-finite loss or gradient, step skipped "
                    f"({self.bad_steps} in a row)",
                )
                if self.bad_steps >= t.max_bad_steps:
                    raise _TooManyBadSteps(
                        batch,
                        f"{self.bad_steps} steps in a row with a non-finite loss or "
                        f"gradient (train.max_bad_steps = {t.max_bad_steps})",
                    )
                continue
            self.bad_steps = 0
            values, norm, clipped = result
            sums += values
            n_ok += 1
            if self.step % log_every == 0 or batch == self.steps_per_epoch or stopping:
                now = time.time()
                self.events.step(
                    epoch,
                    self.step,
                    group_lrs(self.optimizer),
                    norm,
                    clipped,
                    dict(zip(COMPONENTS, values)),
                    imgs_win / max(now - t_win, 1e-9),
                )
                t_win, imgs_win = now, 0
            if stopping:
                break
        return batch, dict(zip(COMPONENTS, (sums / max(n_ok, 1)).tolist()))

    def validate(self, epoch: int) -> bool:
        """Evaluate (the EMA model when there is one), emit `val`; True when the best metric improved.

        Under DDP rank 0 validates on the whole val set while the others wait: its weights are theirs.
        """
        if self.rank != 0:
            self.dist.barrier()
            return False
        model = self.ema.module if self.ema else self.model
        result = evaluate(model, self.val_loader, self.exp, self.device)
        faults.hit("val")
        self.dist.barrier()
        self.events.val(epoch, result["metrics"], result["per_class"], result.get("loss"))
        value = result["metrics"][BEST_METRIC]
        if self.best is None or value > self.best["value"]:
            self.best = {"epoch": epoch, "metric": BEST_METRIC, "value": value}
            return True
        return False


def attach_sinks(events: EventWriter, exp: Experiment, run_dir: Path) -> None:
    """Mirror events to W&B and TensorBoard as the experiment asks; a problem with either is a warning,
    never a failed run."""
    if exp.logging.wandb:
        try:
            from surgtui.engine.wandb_sink import WandbSink

            events.add_sink(WandbSink(exp, run_dir, run_dir.name, events.log))
        except Exception as exc:
            events.log("warning", f"W&B logging is off: {one_line(exc)}")
    if exp.logging.tensorboard:
        try:
            from surgtui.engine.tensorboard_sink import TensorBoardSink

            events.add_sink(TensorBoardSink(run_dir))
        except Exception as exc:
            events.log("warning", f"TensorBoard logging is off: {one_line(exc)}")


def _say(message: str) -> None:
    """To stderr.log, which may sit on the same full disk: saying it must not fail the exit."""
    try:
        print(message, file=sys.stderr, flush=True)
    except OSError:
        pass


def run(
    run_dir: str | Path,
    resume: bool = False,
    early_signals: list[int] | None = None,
    lock_until_exit: bool = False,
) -> int:
    """Train the run in `run_dir`; every outcome ends with a `run_end` event. Returns the exit code.

    `early_signals`: stop signals that arrived before torch was loaded (the run stops at once, resumable).
    `lock_until_exit`: keep the run's lock until the process exits (the engine process: "running" lasts
    until it is gone), instead of releasing it on return (in-process callers).
    """
    global _lock_fd
    run_dir = Path(run_dir)
    started = time.time()
    if not (run_dir / CONFIG_FILE).is_file():  # no run here: nowhere to write events either
        _say(f"error: {run_dir}: not a run directory (no {CONFIG_FILE})")
        return ExitCode.USAGE
    dist = Dist()
    is_main = dist.rank == 0  # node 0's first rank: validation, checkpoints, W&B
    # Each machine's first rank writes its run's events; on nodes > 0 that is all but validation and
    # checkpoints, which only rank 0 makes (docs/engine.md, "Several machines").
    writes_events = dist.node_lead
    if not os.environ.get("TORCHELASTIC_RUN_ID"):  # under torchrun the agent holds the lock for all ranks
        _lock_fd = take_engine_lock(run_dir)
        if _lock_fd is None:  # before any write: the engine that holds it owns the stream
            _say(
                f"error: run {run_dir.name} is already being trained by another engine; not starting a second"
            )
            return ExitCode.USAGE
    if writes_events:
        remove_stale_temps(run_dir / WEIGHTS_DIR)  # a killed save's temp file (up to the model's size)
        (run_dir / STOP_REASON_FILE).unlink(missing_ok=True)  # an earlier stop's: this attempt has its own
    events: Any = EventWriter(run_dir) if writes_events else _NoEvents()
    trainer: Trainer | None = None

    def end(status: str, reason: str, code: int) -> int:
        best = trainer.best if trainer else None
        try:
            events.run_end(status, reason, best, time.time() - started)
        except OSError as exc:  # the disk is full even for one line: the run will read `crashed`
            _say(f"error: could not record the run's end ({status}: {reason}): {one_line(exc)}")
        return code

    die_with_parent()
    try:
        with StopFlag(patient=dist.active, pending=early_signals) as stop:
            exp = load_frozen(run_dir / CONFIG_FILE)
            if is_main:
                attach_sinks(events, exp, run_dir)
            trainer = Trainer(run_dir, exp, events, stop, resume, dist)
            status, reason = trainer.fit()
        return end(status, reason, exit_code_for(status))
    except UserError as exc:
        _say(f"error: {exc}")
        return end("failed", str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return end("stopped", "interrupted twice: stopped without finishing the step", ExitCode.STOPPED)
    except OSError as exc:
        _say(traceback.format_exc())
        what = "disk full" if exc.errno == errno.ENOSPC else "file system error"
        return end("failed", f"{what}: {one_line(exc)}", ExitCode.FAILED)
    except Exception as exc:
        _say(traceback.format_exc())
        return end("failed", one_line(exc), ExitCode.FAILED)
    finally:
        try:
            events.close()
        finally:
            dist.close()
            if _lock_fd is not None and not lock_until_exit:  # in-process callers may train this run again
                os.close(_lock_fd)
                _lock_fd = None
