"""`python -m surgtui.engine.predict WEIGHTS SOURCE --out DIR`: run a trained detector on images or a video.

Started by `surgtui predict` (surgtui/cli/predict.py checks the arguments first). SOURCE is
an image, a folder of images or a video. Writes DIR/predictions.json (COCO style: `images`,
`categories`, `annotations` with `score`, boxes in the original image's pixels) and, unless
--no-images, the images with their boxes drawn (same file names) or the video with its
boxes drawn (DIR/<stem>.mp4).

The model and its input size come from the checkpoint's own config (load_for_inference:
the EMA weights, as validation used them). Images are letterboxed exactly as for training
and validation (surgtui.engine.transforms.letterbox: the rect canvas when `data.rect`). Detections: score = objectness ×
class probability of the box's best class, score ≥ --conf, per-class NMS at --iou, at most
`val.max_det` per image. Loading and letterboxing run in a thread ahead of the model.

Errors in the input are one line `surgtui: error: ...` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from surgtui.config.schema import CLASS_NAMES, Experiment
from surgtui.data.formats import CATEGORIES
from surgtui.data.media import folder_images
from surgtui.engine.checkpoint import load_for_inference
from surgtui.engine.evaluate import non_max_suppression
from surgtui.engine.model import Detector
from surgtui.engine.transforms import PAD_VALUE, letterbox, letterbox_canvas, letterbox_geometry
from surgtui.errors import UserError, one_line
from surgtui.fileio import atomic_write, write_text_atomic
from surgtui.runs.inference import check_predict_args, resolve_weights

EXIT_OK, EXIT_FAILED, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
PREDICTIONS_FILE = "predictions.json"
BOX_COLOURS = {
    0: (60, 255, 60),
    1: (255, 220, 0),
}  # as `surgtui data check --preview`: green needle, yellow driver
JPEG_QUALITY = 90


# ---------------------------------------------------------------- shared with eval_main


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when available, else CPU (as the engine's train.device)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: CUDA is not available here; use --device auto or cpu")
        index = int(name.split(":")[1]) if ":" in name else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device("cuda", index)
    return torch.device(name)


def checkpoint_info(path: Path) -> dict[str, Any]:
    """Check that `path` is a surgtui checkpoint (UserError otherwise); its epoch, step and best.

    Memory-maps the file, so the tensors are not read twice (load_for_inference reads them).
    """
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except RuntimeError:  # not torch's zip format: let a plain load say what the file is
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a pickle error, a truncated file, ...
        raise UserError(f"{path}: not a surgtui checkpoint (cannot load it: {one_line(exc)})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("config"), dict) or "model" not in ckpt:
        keys = ", ".join(list(ckpt)[:4]) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(
            f"{path}: not a surgtui checkpoint (expected the keys config, model, ema; found {keys or 'none'})"
        )
    return {"epoch": ckpt.get("epoch"), "step": ckpt.get("step"), "best": ckpt.get("best")}


def load_model(path: Path, device: torch.device) -> tuple[Detector, Experiment, dict[str, Any]]:
    """The checkpoint's model (EMA weights, eval mode) on `device`, its experiment, and checkpoint_info."""
    info = checkpoint_info(path)
    try:
        model, exp = load_for_inference(path, "cpu")
    except UserError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:  # weights that do not fit the config
        raise UserError(f"{path}: checkpoint weights do not fit its config ({one_line(exc)})") from None
    return model.to(device), exp, info


def user_error_text(exc: UserError) -> str:
    """One line, also for a UserError re-raised from a DataLoader worker (its text holds a traceback)."""
    text = str(exc).strip()
    if "Traceback" in text:
        text = text.splitlines()[-1]
        text = text.split("UserError: ", 1)[-1]
    return text.splitlines()[0] if text else "error"


def main_wrapper(run: Callable[[], int]) -> int:
    """UserError -> `surgtui: error: ...` (one line), exit 2; Ctrl-C -> 130; anything else: traceback, 1."""
    try:
        return run()
    except UserError as exc:
        print(f"surgtui: error: {user_error_text(exc)}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("surgtui: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


class ProgressBar:
    """A transient Rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, label: str, total: int | None, enabled: bool, stderr: bool = False) -> None:
        self._bar: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
            console=Console(stderr=stderr),
        )
        self._task = self._bar.add_task(label, total=total)
        self._bar.start()

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


# ---------------------------------------------------------------- inputs


@dataclass
class Item:
    """One image or video frame, letterboxed for the model."""

    index: int  # 0-based position in the source (the frame index of a video)
    name: str  # file name (a folder's image, the image) or the video's file name
    width: int
    height: int
    canvas: np.ndarray  # H×W×3 uint8, letterboxed (S×S, or the rect canvas as in validation)
    scale: float
    pad_x: int
    pad_y: int
    path: Path | None = None  # an image file (re-read at full size to draw on)
    frame: np.ndarray | None = None  # a video frame, H×W×3 uint8 RGB
    time: float | None = None  # a video frame's presentation time in seconds


def letterbox_array(image: np.ndarray, size: int, rect: bool = False) -> tuple[np.ndarray, float, int, int]:
    """`transforms.letterbox` for an RGB array (a video frame): (canvas, scale, pad_x, pad_y)."""
    height, width = image.shape[:2]
    scale, new_w, new_h, pad_x, pad_y = letterbox_geometry(width, height, size, rect=rect)
    canvas = Image.new("RGB", letterbox_canvas(width, height, size, rect), (PAD_VALUE,) * 3)
    canvas.paste(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR), (pad_x, pad_y))
    return np.asarray(canvas), scale, pad_x, pad_y


def image_items(paths: list[Path], size: int, root: Path, rect: bool = False) -> Iterator[Item]:
    for i, path in enumerate(paths):
        try:
            canvas, scale, pad_x, pad_y, (h, w) = letterbox(path, size, rect)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise UserError(f"{path}: cannot read this image ({one_line(exc)})") from None
        name = str(path.relative_to(root)) if root in path.parents else path.name
        yield Item(i, name, w, h, np.asarray(canvas), scale, pad_x, pad_y, path=path)


def open_video(path: Path) -> tuple[Any, Any]:
    """(container, its first video stream); UserError if it does not open or has no video."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot open this video ({one_line(exc)})") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path}: no video stream in this file")
    return container, container.streams.video[0]


def video_items(path: Path, size: int, rect: bool = False) -> Iterator[Item]:
    import av

    container, stream = open_video(path)
    i = -1
    with container:
        try:
            for i, frame in enumerate(container.decode(stream)):
                image = frame.to_ndarray(format="rgb24")
                canvas, scale, pad_x, pad_y = letterbox_array(image, size, rect)
                t = float(frame.time) if frame.time is not None else None
                yield Item(
                    i,
                    path.name,
                    image.shape[1],
                    image.shape[0],
                    canvas,
                    scale,
                    pad_x,
                    pad_y,
                    frame=image,
                    time=t,
                )
        except av.FFmpegError as exc:
            raise UserError(f"{path}: cannot decode frame {i + 1} ({one_line(exc)})") from None
    if i < 0:
        raise UserError(f"{path}: no frames in this video")


def video_info(path: Path) -> tuple[Fraction, int | None]:
    """(frame rate, frame count when the container says) of a video."""
    container, stream = open_video(path)
    with container:
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        return Fraction(rate), (stream.frames or None)


def batched(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_DONE = object()


def prefetch(it: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run `it` in a thread, `depth` results ahead (PIL resizing and FFmpeg decoding release the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for x in it:
                while not stop.is_set():
                    try:
                        q.put((True, x), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            q.put((False, exc))
            return
        q.put((True, _DONE))

    thread = threading.Thread(target=work, name="surgtui-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, x = q.get()
            if not ok:
                raise x
            if x is _DONE:
                return
            yield x
    finally:
        stop.set()


# ---------------------------------------------------------------- the model


def best_class_only(preds: torch.Tensor) -> torch.Tensor:
    """Zero every class probability but each box's best: one label per box (non_max_suppression is multi-label)."""
    cls = preds[..., 5:]
    best = cls.argmax(-1, keepdim=True)
    only = torch.zeros_like(cls).scatter_(-1, best, cls.gather(-1, best))
    return torch.cat((preds[..., :5], only), -1)


def _stack(batch: list[Item]) -> np.ndarray:
    """The canvases as one array; rect canvases of other shapes padded grey at the bottom/right (as collate does)."""
    h = max(it.canvas.shape[0] for it in batch)
    w = max(it.canvas.shape[1] for it in batch)
    if all(it.canvas.shape[:2] == (h, w) for it in batch):
        return np.stack([it.canvas for it in batch])
    out = np.full((len(batch), h, w, 3), PAD_VALUE, dtype=np.uint8)
    for i, it in enumerate(batch):
        out[i, : it.canvas.shape[0], : it.canvas.shape[1]] = it.canvas
    return out


class Predictor:
    """Letterboxed uint8 canvases in, per image `[K, 6]` (x1, y1, x2, y2, score, label) in original pixels out."""

    def __init__(
        self, model: Detector, exp: Experiment, device: torch.device, conf: float, iou: float
    ) -> None:
        self.model, self.exp, self.device = model, exp, device
        self.conf, self.iou = conf, iou
        self.amp = device.type == "cuda" and exp.train.amp
        if device.type == "cuda":
            model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True  # a few input sizes (one per aspect ratio)

    @torch.inference_mode()
    def __call__(self, batch: list[Item]) -> list[torch.Tensor]:
        x = torch.from_numpy(_stack(batch)).to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float().div_(255)
        with torch.autocast(self.device.type, enabled=self.amp):
            outputs = self.model(x)
        preds = best_class_only(self.model.decode(outputs).float())
        dets = non_max_suppression(preds, self.conf, self.iou, self.exp.val.max_det)
        out = []
        for it, det in zip(batch, dets):
            det = det.cpu()
            det[:, [0, 2]] = ((det[:, [0, 2]] - it.pad_x) / it.scale).clamp_(0, it.width)
            det[:, [1, 3]] = ((det[:, [1, 3]] - it.pad_y) / it.scale).clamp_(0, it.height)
            # A box (all but a sub-pixel sliver) in the padding has nothing left to show.
            keep = (det[:, 2] - det[:, 0] >= 1) & (det[:, 3] - det[:, 1] >= 1)
            out.append(det[keep])
        return out


# ---------------------------------------------------------------- outputs


_fonts: dict[int, Any] = {}


def _font(size: int) -> Any:
    if size not in _fonts:
        try:
            _fonts[size] = ImageFont.load_default(size=size)
        except (
            TypeError,
            ValueError,
            OSError,
            ImportError,
        ):  # Pillow without FreeType: the fixed bitmap font
            _fonts[size] = ImageFont.load_default()
    return _fonts[size]


def draw_detections(image: Image.Image, det: torch.Tensor) -> Image.Image:
    """Draw each box with `class score` in its class colour (lowest score first, so the best lie on top)."""
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    longest = max(image.size)
    width = max(1, round(longest / 320))
    font = _font(max(9, round(longest / 60)))
    for x1, y1, x2, y2, score, label in sorted(det.tolist(), key=lambda r: r[4]):
        colour = BOX_COLOURS.get(int(label), (255, 255, 255))
        draw.rectangle((x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)), outline=colour, width=width)
        text = f"{CLASS_NAMES[int(label)]} {score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        ty = y1 - th - 2 if y1 - th - 2 >= 0 else min(y1 + width, image.size[1] - th - 2)
        tx = min(max(0, x1), max(0, image.size[0] - tw - 2))
        draw.rectangle((tx, ty, tx + tw + 2, ty + th + 2), fill=colour)
        draw.text((tx + 1 - left, ty + 1 - top), text, fill=(0, 0, 0), font=font)
    return image


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


class Collector:
    """Builds predictions.json: images, categories, annotations (COCO results with ids and names)."""

    def __init__(self, video: bool) -> None:
        self.video = video
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.per_class = np.zeros(len(CLASS_NAMES), dtype=np.int64)

    def add(self, item: Item, det: torch.Tensor) -> None:
        image_id = item.index + 1
        image = {"id": image_id, "file_name": item.name, "width": item.width, "height": item.height}
        if self.video:
            image["frame"] = item.index
            if item.time is not None:
                image["time"] = round(item.time, 6)
        self.images.append(image)
        for x1, y1, x2, y2, score, label in det.tolist():
            label = int(label)
            w, h = x2 - x1, y2 - y1
            ann = {"id": len(self.annotations) + 1, "image_id": image_id}
            ann.update({"frame": item.index} if self.video else {"file_name": item.name})
            ann.update(
                {
                    "category_id": label + 1,
                    "category": CLASS_NAMES[label],
                    "bbox": [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)],
                    "area": round(w * h, 2),
                    "score": round(score, 5),
                    "iscrowd": 0,
                }
            )
            self.annotations.append(ann)
            self.per_class[label] += 1

    def document(self, info: dict) -> dict:
        return {
            "info": info,
            "images": self.images,
            "categories": CATEGORIES,
            "annotations": self.annotations,
        }


# ---------------------------------------------------------------- the command


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
) -> dict:
    """Run the detector in `weights` (a file or a run) on `source`; write DIR/predictions.json (+ drawings).

    Returns the predictions document. `progress` None: a bar when stdout is a terminal.
    """
    t0 = time.time()
    kind = check_predict_args(source, out, conf, iou, batch, device)
    path = resolve_weights(weights)
    dev = resolve_device(device)
    model, exp, ckpt = load_model(path, dev)
    size = exp.model.img_size
    out.mkdir(parents=True, exist_ok=True)
    predictor = Predictor(model, exp, dev, conf, iou)
    collector = Collector(video=kind == "video")
    show = sys.stdout.isatty() if progress is None else progress

    written: list[str] = []
    if kind == "video":
        fps, total = video_info(source)
        items: Iterator[Item] = video_items(source, size, exp.data.rect)  # letterboxed as validation was
    else:
        paths = folder_images(source) if kind == "folder" else [source]
        total = len(paths)
        items = image_items(paths, size, source if kind == "folder" else source.parent, exp.data.rect)
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
            encode_video(video_out, frames, fps=fps)  # type: ignore[arg-type]  # a Fraction rate works too
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
        "epoch": ckpt.get("epoch"),
        "source": str(source),
        "kind": kind,
        "img_size": size,
        "conf": conf,
        "iou": iou,
        "max_det": exp.val.max_det,
        "device": str(dev),
        "variant": exp.variant,
        "backbone": exp.model.backbone,
    }
    if kind == "video":
        info.update(fps=float(fps), drawn_video=written[0] if written else None)
    doc = collector.document(info)
    write_text_atomic(out / PREDICTIONS_FILE, json.dumps(doc) + "\n")
    counts = ", ".join(f"{name} {c}" for name, c in zip(CLASS_NAMES, collector.per_class.tolist()))
    what = {"video": "frames", "folder": "images", "image": "image"}[kind]
    drawn = (
        f" and {written[0]}"
        if kind == "video" and written
        else (f" and {len(written)} drawn images" if written else "")
    )
    print(
        f"{n} {what}, {len(collector.annotations)} detections ({counts}) at conf >= {conf:g} in {elapsed:.1f} s "
        f"({n / max(elapsed, 1e-9):.1f} {what if n != 1 else 'image'}/s, {dev}); wrote {out / PREDICTIONS_FILE}{drawn}",
        flush=True,
    )
    return doc


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
    parser.add_argument("weights", help="weights file (best.pt, last.pt) or a run directory")
    parser.add_argument("source", type=Path, help="an image, a folder of images or a video")
    parser.add_argument(
        "--out", type=Path, required=True, help="directory for predictions.json and drawn images"
    )
    parser.add_argument("--conf", type=float, default=0.25, help="minimum score (objectness x class) [0.25]")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold [0.45]")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N [auto]")
    parser.add_argument("--batch", type=int, default=8, help="images per forward pass [8]")
    parser.add_argument("--no-images", action="store_true", help="write only predictions.json")
    a = parser.parse_args(argv)

    def run() -> int:
        predict(a.weights, a.source, a.out, a.conf, a.iou, a.device, a.batch, not a.no_images)
        return EXIT_OK

    return main_wrapper(run)


if __name__ == "__main__":
    sys.exit(main())
