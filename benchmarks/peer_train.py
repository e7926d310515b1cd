"""Train Ultralytics YOLOv8n from scratch and log each epoch as JSON; the peer side of detector_vs_peer.py.

    benchmarks/.peer-venv/bin/python benchmarks/peer_train.py --data D.yaml --out LOG.jsonl \
        [--epochs 12] [--imgsz 320] [--batch 16] [--seed 0] [--threads 1] --project DIR --name NAME

Runs in the peer's own venv (ultralytics installed), never in the project's: it imports nothing of surgtui.
Set YOLO_OFFLINE=1 and YOLO_CONFIG_DIR (with Ultralytics/Arial.ttf in it) so nothing is downloaded;
detector_vs_peer.py does. Lines written to --out:
  {"type": "start", "ultralytics", "torch", "threads_ultralytics", "threads", "device", "workers", "train_images"}
  {"type": "epoch", "epoch" (1-based), "train_s" (training only, validation excluded), "map50", "map50_95"}
  {"type": "final", ...metrics of best.pt re-validated after the last epoch}
  {"type": "end", "duration_s"}
Callbacks and metric keys checked against ultralytics 8.4 (engine/trainer.py, utils/metrics.py).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

MAP50, MAP50_95 = "metrics/mAP50(B)", "metrics/mAP50-95(B)"  # DetMetrics.keys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads once training starts")
    ap.add_argument("--project", required=True)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()

    import torch
    import ultralytics
    from ultralytics import YOLO

    out = open(args.out, "w", encoding="utf-8")  # open for the whole run
    state: dict[str, Any] = {"t0": 0.0, "train_s": None}
    t_start = time.perf_counter()

    def write(record: dict[str, Any]) -> None:
        out.write(json.dumps(record) + "\n")
        out.flush()

    def on_train_start(trainer: Any) -> None:
        # select_device sets min(8, cpu_count - 1) threads on CPU; pin it so both sides use the same count.
        before = torch.get_num_threads()
        torch.set_num_threads(args.threads)
        write(
            {
                "type": "start",
                "ultralytics": ultralytics.__version__,
                "torch": torch.__version__,
                "threads_ultralytics": before,
                "threads": torch.get_num_threads(),
                "device": str(trainer.device),
                "workers": trainer.args.workers,
                "train_images": len(trainer.train_loader.dataset),
            }
        )

    def on_train_epoch_start(trainer: Any) -> None:
        state["t0"] = time.perf_counter()

    def on_train_epoch_end(trainer: Any) -> None:  # fires before validation
        state["train_s"] = time.perf_counter() - state["t0"]

    def on_fit_epoch_end(trainer: Any) -> None:  # after validation; final_eval fires it once more for best.pt
        m = trainer.metrics or {}
        kind = "epoch" if state["train_s"] is not None else "final"
        write(
            {
                "type": kind,
                "epoch": trainer.epoch + 1,
                "train_s": state["train_s"],
                "map50": m.get(MAP50),
                "map50_95": m.get(MAP50_95),
                "threads": torch.get_num_threads(),
            }
        )
        state["train_s"] = None

    model = YOLO("yolov8n.yaml")  # architecture only: random init, nothing downloaded
    for name, fn in (
        ("on_train_start", on_train_start),
        ("on_train_epoch_start", on_train_epoch_start),
        ("on_train_epoch_end", on_train_epoch_end),
        ("on_fit_epoch_end", on_fit_epoch_end),
    ):
        model.add_callback(name, fn)
    model.train(
        data=args.data,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        seed=args.seed,
        device="cpu",
        workers=0,
        amp=False,
        plots=False,
        pretrained=False,
        val=True,
        project=args.project,
        name=args.name,
        exist_ok=True,
    )
    write({"type": "end", "duration_s": time.perf_counter() - t_start})
    out.close()


if __name__ == "__main__":
    main()
