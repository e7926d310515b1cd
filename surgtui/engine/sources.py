"""What `predict` reads: an image, a folder of images or a video, as letterboxed items, batched and prefetched.

Images are letterboxed exactly as for training and validation (`transforms.letterbox`: the
rect canvas when `data.rect`); a video's frames the same way from their RGB arrays. Loading
and letterboxing run in a thread ahead of the model.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from surgtui.data.media import folder_images
from surgtui.engine.transforms import PAD_VALUE, letterbox, letterbox_canvas, letterbox_geometry
from surgtui.errors import UserError, one_line


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

    av.logging.set_level(None)  # torchvision < 0.26 turns FFmpeg's logging on: its lines would garble ours
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


def source_items(
    source: Path, kind: str, size: int, rect: bool = False
) -> tuple[Iterator[Item], int | None, Fraction | None]:
    """(items, their number when known, a video's frame rate) of a source of `kind` (media.source_kind)."""
    if kind == "video":
        fps, total = video_info(source)
        return video_items(source, size, rect), total, fps
    paths = folder_images(source) if kind == "folder" else [source]
    return image_items(paths, size, source if kind == "folder" else source.parent, rect), len(paths), None


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
