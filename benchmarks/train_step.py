"""Engine step vs bare model forward+backward, and the loss/assignment share of a step.

    .venv/bin/python benchmarks/train_step.py [--batch 8] [--size 320] [--boxes 20] [--repeats 5] [--threads 2]

Same tensors for every variant. "bare" is the model's forward and a backward of
a trivial sum, no optimizer; "engine" is StepRunner: targets to tensor, forward,
loss with assignment, backward, grad-norm clip, Adam step, EMA update.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from surgtui.config.load import resolve_data
from surgtui.engine.loss import targets_to_tensor
from surgtui.engine.model import build_model
from surgtui.engine.train import StepRunner


def timed(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def interleaved(a, b, repeats: int) -> tuple[float, float]:
    a(), b()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, out in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def random_targets(batch: int, size: int, boxes: int, g: torch.Generator) -> list[dict]:
    out = []
    for _ in range(batch):
        wh = torch.rand(boxes, 2, generator=g) * size * 0.3 + 4
        xy = torch.rand(boxes, 2, generator=g) * (size - wh)
        out.append(
            {"boxes": torch.cat((xy, xy + wh), 1), "labels": torch.randint(0, 2, (boxes,), generator=g)}
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--boxes", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variant", default="YOLOv5-Small")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    exp, _ = resolve_data(
        {"variant": args.variant, "model": {"pretrained": False, "img_size": args.size}}, "benchmark"
    )
    device = torch.device("cpu")
    model = build_model(exp.model).train()
    runner = StepRunner(model, exp, device)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=g)
    targets = random_targets(args.batch, args.size, args.boxes, g)

    def bare() -> None:
        outs = model(images)
        sum(o.float().sum() for o in outs).backward()
        model.zero_grad(set_to_none=True)

    def engine() -> None:
        runner(images, targets)

    with torch.no_grad():
        outputs = [o.detach() for o in model(images)]
    tgt = targets_to_tensor(targets, device)

    def loss_only() -> None:
        runner.loss_fn(outputs, targets_to_tensor(targets, device))

    def assign_only() -> None:
        runner.loss_fn.assign(outputs, tgt)

    leaf = [o.clone().requires_grad_(True) for o in outputs]

    def loss_fwd_bwd() -> None:
        runner.loss_fn(leaf, targets_to_tensor(targets, device))[0].backward()

    def update_only() -> None:  # what the engine adds after backward: clip, Adam, EMA
        for p in runner.params:
            p.grad = torch.ones_like(p)
        torch.nn.utils.clip_grad_norm_(runner.params, 10.0)
        runner.optimizer.step()
        runner.ema.update(model)

    # Interleaved, so drifting machine load hits both alike.
    t_bare, t_engine = interleaved(bare, engine, args.repeats)
    t_update = timed(update_only, args.repeats)
    t_loss = timed(loss_only, args.repeats * 4)
    t_loss_bwd = timed(loss_fwd_bwd, args.repeats * 4)
    t_assign = timed(assign_only, args.repeats * 4)
    n_pos = len(runner.loss_fn.assign(outputs, tgt).image)
    print(f"device cpu, {torch.get_num_threads()} threads, torch {torch.__version__}, variant {args.variant}")
    print(
        f"batch {args.batch} x {args.size} px, {args.boxes} boxes/image -> {n_pos} positive (cell, anchor) rows"
    )
    print(f"bare forward+backward   {t_bare * 1000:8.1f} ms")
    print(
        f"engine step             {t_engine * 1000:8.1f} ms   overhead {100 * (t_engine / t_bare - 1):+.1f} % (target <= 10 %)"
    )
    print(
        f"  clip + Adam + EMA     {t_update * 1000:8.1f} ms   {100 * t_update / t_engine:.1f} % of the step"
    )
    print(f"  loss fwd (with assign){t_loss * 1000:8.1f} ms   {100 * t_loss / t_engine:.1f} % of the step")
    print(
        f"  loss fwd+bwd          {t_loss_bwd * 1000:8.1f} ms   {100 * t_loss_bwd / t_engine:.1f} % of the step (target <= 15 %)"
    )
    print(
        f"  assignment alone      {t_assign * 1000:8.1f} ms   {100 * t_assign / t_engine:.1f} % of the step"
    )


if __name__ == "__main__":
    main()
