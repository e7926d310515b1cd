"""What `predict` reads: images (one, a folder's, a glob's) or a video, as letterboxed items, batched, prefetched.

Images are letterboxed exactly as for training and validation (`transforms.letterbox`: the
rect canvas when `data.rect`); a video's frames the same way from their RGB arrays. Loading
and letterboxing run in a thread ahead of the model. A video may be sampled (`--every N`,
`--fps F`): every frame is decoded (inter-frame coding needs them), only the kept ones are
converted and letterboxed.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from surgtui.data.media import relative_name, source_images
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
        yield Item(i, relative_name(path, root), w, h, np.asarray(canvas), scale, pad_x, pad_y, path=path)


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


def sampled_frames(
    frames: Iterable[Any], rate: Fraction, every: int | None = None, fps: float | None = None
) -> Iterator[tuple[int, Any]]:
    """(index, frame) of the decoded frames kept: all; every Nth (0, N, 2N, ...); or about `fps` per second.

    `fps`: the first frame at or after each 1/fps step of presentation time, counted from the first
    frame (exact: timestamps as fractions, `fps` as the decimal given); above the video's rate, every frame.
    """
    step = Fraction(repr(float(fps))) if fps else None
    start: Fraction | None = None
    next_slot = 0
    for i, frame in enumerate(frames):
        if every is not None:
            if i % every == 0:
                yield i, frame
            continue
        if step is None:
            yield i, frame
            continue
        t = frame_time(frame, i, rate)
        start = t if start is None else start
        slot = math.floor((t - start) * step)
        if slot >= next_slot:
            next_slot = slot + 1
            yield i, frame


def frame_time(frame: Any, index: int, rate: Fraction) -> Fraction:
    """A decoded frame's presentation time in seconds, exact; index / rate when the container has no pts."""
    if frame.pts is not None and frame.time_base is not None:
        return frame.pts * Fraction(frame.time_base)
    return index / rate


def sampled_count(
    total: int | None, rate: Fraction, every: int | None = None, fps: float | None = None
) -> int | None:
    """How many of `total` frames at a constant `rate` sampled_frames keeps (None: the count is unknown)."""
    if total is None or every is None and fps is None:
        return total
    if every is not None:
        return -(-total // every)
    step = Fraction(repr(float(fps)))
    return total if step >= rate else math.floor((total - 1) / rate * step) + 1


def sampled_rate(rate: Fraction, every: int | None = None, fps: float | None = None) -> Fraction:
    """The frame rate of the kept frames (the drawn video's, so it plays in real time)."""
    if every is not None:
        return rate / every
    return min(rate, Fraction(repr(float(fps)))) if fps else rate


def video_items(
    path: Path, size: int, rect: bool = False, every: int | None = None, fps: float | None = None
) -> Iterator[Item]:
    """The kept frames (sampled_frames) of a video, letterboxed; Item.index: the frame's index in the video."""
    import av

    container, stream = open_video(path)
    rate = _rate(stream)
    i = -1
    with container:
        try:
            for i, frame in sampled_frames(_decode(container, stream), rate, every, fps):
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
        except _DecodeError as exc:  # frame numbers 0-based, as in predictions.json
            raise UserError(f"{path}: cannot decode frame {exc.index} ({one_line(exc.__cause__)})") from None
        except av.FFmpegError as exc:
            raise UserError(f"{path}: cannot convert frame {i} ({one_line(exc)})") from None
    if i < 0:
        raise UserError(f"{path}: no frames in this video")


class _DecodeError(Exception):
    """A frame that did not decode, with its index in the video (frames sampling skips count too)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _decode(container: Any, stream: Any) -> Iterator[Any]:
    import av

    i = 0
    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.FFmpegError as exc:
            raise _DecodeError(i) from exc
        yield frame
        i += 1


def video_info(path: Path) -> tuple[Fraction, int | None]:
    """(frame rate, frame count when the container says) of a video."""
    container, stream = open_video(path)
    with container:
        return _rate(stream), (stream.frames or None)


def _rate(stream: Any) -> Fraction:
    return Fraction(stream.average_rate or stream.guessed_rate or 25)


def source_items(
    source: Path,
    kind: str,
    size: int,
    rect: bool = False,
    every: int | None = None,
    fps: float | None = None,
    recursive: bool = False,
) -> tuple[Iterator[Item], int | None, Fraction | None]:
    """(items, their number when known, a video's frame rate) of a source of `kind` (media.source_kind).

    A video's frames sampled by `every` / `fps` (sampled_frames); a folder searched with `recursive`.
    """
    if kind == "video":
        rate, total = video_info(source)
        return video_items(source, size, rect, every, fps), sampled_count(total, rate, every, fps), rate
    paths, root = source_images(source, kind, recursive)
    return image_items(paths, size, root, rect), len(paths), None


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
