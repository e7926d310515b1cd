"""MP4 encode/decode with PyAV (the wheel bundles FFmpeg with libx264)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# What opening or decoding a bad file raises: an FFmpeg error, or IndexError when it has no video stream.
DECODE_ERRORS = (av.FFmpegError, IndexError)


def _encoder() -> tuple[str, dict[str, str]]:
    """H.264 when the FFmpeg build has it, MPEG-4 part 2 otherwise (both decode everywhere)."""
    try:
        av.codec.Codec("libx264", "w")
        return "libx264", {"crf": "18", "preset": "veryfast"}
    except av.codec.codec.UnknownCodecError:
        return "mpeg4", {"qscale": "3"}


def encode_video(path: Path, frames: Iterable[np.ndarray], fps: int = 1) -> int:
    """Write H×W×3 uint8 RGB frames (even W and H: yuv420p) to an MP4; return the frame count.

    Raises RuntimeError if the container ends up with a different number of frames.
    """
    codec, options = _encoder()
    written = 0
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.pix_fmt = "yuv420p"
        for image in frames:
            if written == 0:
                stream.height, stream.width = image.shape[:2]
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = written, Fraction(1, fps)
            container.mux(stream.encode(frame))
            written += 1
        container.mux(stream.encode(None))  # flush frames the encoder still holds
    stored = count_frames(path)
    if stored != written:
        raise RuntimeError(f"{path}: wrote {written} frames but the file holds {stored}")
    return written


def count_frames(path: Path) -> int:
    """Number of video frames in the file, counted from its packets (no decoding)."""
    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def video_size(path: Path) -> tuple[int, int]:
    """(width, height) of the first video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def decode_frames(path: Path) -> Iterator[np.ndarray]:
    """Yield every frame as H×W×3 uint8 RGB, in presentation order."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")
