"""`python -m surgtui.engine.predict WEIGHTS SOURCE --out DIR`: run a trained detector on images or a video.

Started by `surgtui predict` (surgtui/cli/predict.py checks the arguments first). SOURCE is
an image, a folder of images or a video. Writes DIR/predictions.json (COCO style: `images`,
`categories`, `annotations` with `score`, boxes in the original image's pixels) and, unless
--no-images, the images with their boxes drawn (same file names) or the video with its
boxes drawn (DIR/<stem>.mp4).

The model and its input size come from the checkpoint's own config (inference.load_model:
the EMA weights, as validation used them), or from an exported file's sidecar (export-model's
ONNX or TorchScript file: exported.py; only the model call differs). The pieces: sources.py (images and frames,
letterboxed as in validation, read ahead in a thread), predictor.py (the model, NMS, boxes
back in original pixels), predictions.py (the document), surgtui/data/draw.py (the drawing).

Errors in the input are one line `surgtui: error: ...` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from surgtui.config.device import DEVICE_CHOICES
from surgtui.config.schema import CLASS_NAMES
from surgtui.data.draw import draw_detections
from surgtui.data.media import LABELS_DIR
from surgtui.engine.inference import ProgressBar, main_wrapper
from surgtui.engine.predictions import PREDICTIONS_FILE, Collector
from surgtui.engine.predictor import open_predictor
from surgtui.engine.sources import Item, batched, prefetch, sampled_rate, source_items
from surgtui.errors import ExitCode, UserError, one_line
from surgtui.fileio import atomic_write, write_text_atomic
from surgtui.runs.inference import PredictOptions, check_predict_args, resolve_weights
from surgtui.runs.layout import BEST_WEIGHTS, LAST_WEIGHTS

JPEG_QUALITY = 90


def predict(
    weights: str,
    source: Path,
    out: Path,
    conf: float = 0.25,
    iou: float = 0.45,
    device: str = "auto",
    batch: int = 8,
    images: bool = True,
    progress: bool | None = None,
    options: PredictOptions | None = None,
) -> dict:
    """Run the detector in `weights` (a file or a run) on `source`; write DIR/predictions.json (+ drawings).

    Returns the predictions document. `progress` None: a bar when stdout is a terminal. `options`:
    frame sampling, folder search, YOLO label files.
    """
    t0 = time.time()
    opts = options or PredictOptions()
    kind = check_predict_args(source, out, conf, iou, batch, device, opts)
    path = resolve_weights(weights)
    predictor, model = open_predictor(path, device, conf, iou)  # a checkpoint, or a file export-model wrote
    dev, size, conf, iou = model.device, model.img_size, model.conf, model.iou
    out.mkdir(parents=True, exist_ok=True)
    labels = out / LABELS_DIR if opts.save_txt else None
    collector = Collector(video=kind == "video", labels=labels, save_conf=opts.save_conf)
    show = sys.stdout.isatty() if progress is None else progress

    written: list[str] = []
    items, total, fps = source_items(  # letterboxed as validation was
        source, kind, size, model.rect, opts.every, opts.fps, opts.recursive
    )
    bar = ProgressBar(f"predict {source.name}", total, show)

    def results() -> Iterator[tuple[Item, torch.Tensor]]:
        for b in prefetch(batched(items, batch)):
            for item, det in zip(b, predictor(b)):
                collector.add(item, det)
                bar.advance()
                yield item, det

    try:
        if kind == "video" and images:
            video_out = out / f"{source.stem}.mp4"
            if video_out.resolve() == source.resolve():
                raise UserError(f"--out {out}: the drawn video would overwrite {source}")
            from surgtui.data.video import encode_video

            frames = (
                _even(np.asarray(draw_detections(Image.fromarray(it.frame), det))) for it, det in results()
            )
            rate = sampled_rate(fps, opts.every, opts.fps)  # type: ignore[arg-type]  # a video has a rate
            encode_video(video_out, frames, fps=rate)  # type: ignore[arg-type]  # a Fraction rate works too
            written.append(video_out.name)
        elif images:
            with ThreadPoolExecutor(1, thread_name_prefix="surgtui-draw") as pool:
                pending: list[Future] = []
                for item, det in results():
                    dest = out / item.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    pending.append(pool.submit(_draw_file, item.path, det, dest))
                    written.append(item.name)
                    while len(pending) > 2 * batch:
                        pending.pop(0).result()
                for f in pending:
                    f.result()
        else:
            for _ in results():
                pass
    finally:
        bar.close()

    elapsed = time.time() - t0
    n = len(collector.images)
    info = {
        "description": "surgtui predictions",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "weights": str(path),
        "epoch": model.epoch,
        "source": str(source),
        "kind": kind,
        "img_size": size,
        "conf": conf,
        "iou": iou,
        "max_det": model.max_det,
        "device": str(dev),
        "variant": model.variant,
        "backbone": model.backbone,
        **({"export": model.export} if model.export else {}),
        **opts.info(),
    }
    if kind == "video":
        info.update(fps=float(fps or 0), drawn_video=written[0] if written else None)
    doc = collector.document(info)
    write_text_atomic(out / PREDICTIONS_FILE, json.dumps(doc) + "\n")
    counts = ", ".join(f"{name} {c}" for name, c in zip(CLASS_NAMES, collector.per_class.tolist()))
    what = {"video": "frames", "folder": "images", "glob": "images", "image": "image"}[kind]
    drawn = (
        f" and {written[0]}"
        if kind == "video" and written
        else (f" and {len(written)} drawn images" if written else "")
    ) + (f" and {collector.label_files} label files in {LABELS_DIR}/" if labels else "")
    print(
        f"{n} {what}, {len(collector.annotations)} detections ({counts}) at conf >= {conf:g} in {elapsed:.1f} s "
        f"({n / max(elapsed, 1e-9):.1f} {what if n != 1 else 'image'}/s, {dev}); wrote {out / PREDICTIONS_FILE}{drawn}",
        flush=True,
    )
    return doc


def save_image(image: Image.Image, path: Path) -> None:
    """Save in the format the name says (JPEG quality 90), atomically."""
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    with atomic_write(path, binary=True, durable=False) as fh:  # one of many frames
        image.save(fh, format=fmt, **({"quality": JPEG_QUALITY} if fmt == "JPEG" else {}))


def _even(image: np.ndarray) -> np.ndarray:
    """Pad to an even width and height (yuv420p) by repeating the last row/column."""
    h, w = image.shape[:2]
    if h % 2 or w % 2:
        image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return image


def _draw_file(src: Path, det: torch.Tensor, dest: Path) -> None:
    try:
        with Image.open(src) as im:
            image = draw_detections(im, det)
    except (OSError, ValueError) as exc:
        raise UserError(f"{src}: cannot read this image ({one_line(exc)})") from None
    save_image(image, dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m surgtui.engine.predict",
        description="Run a trained detector on an image, a folder of images or a video.",
    )
    parser.add_argument(
        "weights",
        help=f"weights file ({BEST_WEIGHTS}, {LAST_WEIGHTS}), a run directory, or an export (.onnx, .torchscript)",
    )
    parser.add_argument("source", type=Path, help="an image, a folder of images or a video")
    parser.add_argument(
        "--out", type=Path, required=True, help=f"directory for {PREDICTIONS_FILE} and drawn images"
    )
    parser.add_argument("--conf", type=float, default=0.25, help="minimum score (objectness x class) [0.25]")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold [0.45]")
    parser.add_argument("--device", default="auto", help=f"{DEVICE_CHOICES} [auto]")
    parser.add_argument("--batch", type=int, default=8, help="images per forward pass [8]")
    parser.add_argument("--no-images", action="store_true", help=f"write only {PREDICTIONS_FILE}")
    parser.add_argument("--every", type=int, help="a video: keep frames 0, N, 2N, ...")
    parser.add_argument("--fps", type=float, help="a video: keep about F frames per second")
    parser.add_argument("--recursive", action="store_true", help="a folder: its subfolders' images too")
    parser.add_argument("--save-txt", action="store_true", help=f"YOLO label files in DIR/{LABELS_DIR}/")
    parser.add_argument("--save-conf", action="store_true", help="append the score to --save-txt's lines")
    a = parser.parse_args(argv)
    opts = PredictOptions(a.every, a.fps, a.recursive, a.save_txt, a.save_conf)

    def run() -> int:
        predict(a.weights, a.source, a.out, a.conf, a.iou, a.device, a.batch, not a.no_images, options=opts)
        return ExitCode.OK

    return main_wrapper(run)


if __name__ == "__main__":
    sys.exit(main())
