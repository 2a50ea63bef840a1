"""Frames from videos: one reader interface, two backends (PyAV and decord), sampling that streams.

Which is the default, measured (benchmarks/video.py, benchmarks/video_memory.py, 2 cores): decord decodes a
little faster alone (61.9x vs 55.3x real time at 1 fps on 720p H.264), but decode + embed, the work the
pipeline does, is equal (33.5x PyAV, 32.9x decord), and only PyAV keeps memory flat with length: decord keeps
a per-frame index of the whole file (peak RSS 4 h / 1 h: decord 1.11, PyAV 1.01). PyAV also reads S3 objects
by byte range, where decord would read a file object whole. So PyAV is the default and decord the fallback
for a file PyAV cannot open (decord was last released in 2021). `open_video` tries the preferred backend
and falls back to the other. Both apply the display rotation of phone videos and use real frame
timestamps, so variable frame rate is safe.

Cost grows with the frames we sample, not with the frames in the file: PyAV seeks only when the next
wanted timestamp is further ahead than a GOP (seeking into a long GOP re-decodes from its keyframe, which is
10x slower than decoding forward); otherwise it decodes forward and drops frames. Memory is flat: frames
are yielded one at a time and never kept.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from PIL import Image

from ml.media import LocalFiles, MediaProblem, MediaReader

log = logging.getLogger(__name__)

BACKENDS = ("pyav", "decord")
DEFAULT_BACKEND = "pyav"  # equal speed with embedding, flat memory, S3 by range: see the module docstring


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    fps: float
    width: int  # as displayed (after rotation)
    height: int
    rotation: int | None  # degrees counter-clockwise turned for display (phone videos); None: decord turns, unsaid
    gop_s: float  # keyframe interval estimate, seconds
    backend: str


@dataclass(frozen=True)
class Frame:
    ts: float  # seconds from the start, of the decoded frame (may differ slightly from the wanted one)
    image: Image.Image


def interval_timestamps(duration_s: float, every_s: float = 1.0) -> list[float]:
    """0, every_s, 2*every_s, ... < duration: the interval samples of the `frames` table."""
    if every_s <= 0:
        raise ValueError("the sampling interval must be positive")
    n = int(np.floor(max(duration_s, 0.0) / every_s - 1e-9)) + 1 if duration_s > 0 else 0
    return [round(i * every_s, 6) for i in range(n)]


def _display_rotation(frame) -> int:
    """Degrees counter-clockwise to turn a decoded frame for display (phone videos carry a display matrix)."""
    return int(round(getattr(frame, "rotation", 0) or 0)) % 360


def _rotate(image: Image.Image, rotation: int) -> Image.Image:
    return image.rotate(rotation, expand=True) if rotation else image  # PIL turns counter-clockwise too


class PyAVReader:
    """PyAV (FFmpeg) backend: GOP-aware seeking, display rotation, variable frame rate safe (uses pts).

    `source` is a path or a seekable binary file object (an S3 object read by ranges: a `MediaReader`'s open).
    """

    name = "pyav"

    def __init__(self, source):
        import av

        self._file = None if isinstance(source, str) else source
        try:
            self.container = av.open(source)
        except (av.error.InvalidDataError, av.error.FFmpegError, OSError) as exc:
            if self._file is not None:
                self._file.close()
            raise MediaProblem(f"cannot open video: {exc}") from None
        fmt = self.container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):  # FFmpeg reads a still image as a one-frame "video"
            self.close()
            kind = fmt.removesuffix("_pipe").upper()
            raise MediaProblem(f"not a video: the file is a {kind} image (its extension says video)")
        if not self.container.streams.video:
            audio = bool(self.container.streams.audio)
            self.close()
            raise MediaProblem("no video stream: audio only" if audio else "empty video: no stream, nothing recorded")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        try:
            self.info = self._info()
        except MediaProblem:
            self.close()
            raise

    def _info(self) -> VideoInfo:
        stream = self.stream
        base = stream.time_base or Fraction(1, 1000)
        if stream.duration:
            duration = float(stream.duration * base)
        elif self.container.duration:
            duration = self.container.duration / 1_000_000
        else:
            duration = 0.0
        if duration <= 0:
            raise MediaProblem("zero-length video")
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
        # the display matrix travels on decoded frames (PyAV 18 exposes it there only): read the first one
        try:
            first = next(self.container.decode(stream), None)
        except Exception as exc:  # noqa: BLE001 - FFmpeg raises many types for a damaged stream
            raise MediaProblem(f"video decode failed at the start: {exc}") from None
        if first is None:
            raise MediaProblem("no decodable video frame")
        rotation = _display_rotation(first)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        gop_s = 2.0  # until keyframes are seen: frames_at learns the real interval while decoding
        return VideoInfo(duration, fps, width, height, rotation, gop_s, self.name)

    def frames_at(self, timestamps: Sequence[float]) -> Iterator[Frame]:
        """The first frame at or after each wanted timestamp (ascending), one at a time."""
        stream, base = self.stream, self.stream.time_base
        start = float(stream.start_time * base) if stream.start_time is not None else 0.0
        wanted = iter(sorted(timestamps))
        target = next(wanted, None)
        decoder = None
        last_key = None
        gop_s = self.info.gop_s
        need_seek = True
        while target is not None:
            if need_seek:  # decided once per wanted stamp, so landing on an early keyframe never re-seeks
                self.container.seek(int((target + start) / base), stream=stream, backward=True, any_frame=False)
                decoder = self.container.decode(stream)
                last_key = None  # keyframe distances are only measured between consecutive keyframes
                need_seek = False
            try:
                frame = next(decoder)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - FFmpeg raises many types for a damaged stream
                raise MediaProblem(f"video decode failed near {target:.2f}s: {exc}") from None
            if frame.pts is None:
                continue
            ts = float(frame.pts * base) - start
            if frame.key_frame:
                if last_key is not None and ts > last_key:
                    gop_s = ts - last_key  # the real keyframe interval, learnt on the way
                last_key = ts
            if ts + 1e-3 < target:
                continue
            image = _rotate(frame.to_image(), self.info.rotation)
            yield Frame(ts=round(ts, 4), image=image)
            target = next(wanted, None)
            while target is not None and target <= ts:  # several wanted stamps fall on one frame
                target = next(wanted, None)
            # seek only when the next stamp is more than a GOP ahead: decoding forward is cheaper below that
            need_seek = target is not None and target - ts > max(gop_s, 1.0)

    def close(self) -> None:
        if getattr(self, "container", None) is not None:
            self.container.close()
        if self._file is not None:
            self._file.close()


class DecordReader:
    """decord backend: frame-accurate random access by index from its frame-timestamp table.

    decord applies the display matrix itself (frames come out upright, checked by the tests) but does not
    report the angle. It reads local files only (it would read a file object whole into memory): S3 videos
    go to PyAV.
    """

    name = "decord"

    def __init__(self, source):
        if not isinstance(source, str):
            raise MediaProblem("decord reads local files only")
        try:
            import decord

            self.reader = decord.VideoReader(source, num_threads=1)
        except Exception as exc:  # noqa: BLE001 - decord raises its own DECORDError or RuntimeError
            raise MediaProblem(f"cannot open video: {_decord_message(exc)}") from None
        n = len(self.reader)
        if n == 0:
            raise MediaProblem("zero-length video")
        stamps = self.reader.get_frame_timestamp(range(n))
        self.starts = stamps[:, 0]
        fps = float(self.reader.get_avg_fps() or 0)
        height, width = self.reader[0].shape[:2]
        duration = float(stamps[-1, 1]) if stamps[-1, 1] > 0 else n / (fps or 1)
        self.info = VideoInfo(duration, fps, width, height, None, 2.0, self.name)

    def frames_at(self, timestamps: Sequence[float]) -> Iterator[Frame]:
        for target in sorted(timestamps):
            index = int(np.searchsorted(self.starts, target - 1e-3))
            if index >= len(self.starts):
                return
            try:
                array = self.reader[index].asnumpy()
            except Exception as exc:  # noqa: BLE001 - decord raises DECORDError for a damaged stream
                raise MediaProblem(f"video decode failed near {target:.2f}s: {_decord_message(exc)}") from None
            yield Frame(ts=round(float(self.starts[index]), 4), image=Image.fromarray(array))

    def close(self) -> None:
        self.reader = None


def _decord_message(exc: Exception) -> str:
    """decord's first error line without its '[12:00:00] /src/video/video_reader.cc:270: ' prefix."""
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\[[\d:]+\] \S+:\d+: (\[[^\]]*\] )?", "", line)[:200]


def write_h264(
    path: str,
    frames: Iterable[np.ndarray],
    fps: int,
    gop: int | None = None,
    options: dict[str, str] | None = None,
    rotation: int = 0,
    timestamps: Iterable[float] | None = None,
) -> None:
    """Encode RGB frames (h, w, 3 uint8, all one size) as H.264 with libx264: test clips, demo and benchmark
    videos are made by the project, never downloaded.

    `rotation` writes a display matrix (degrees counter-clockwise, as a phone does); `timestamps` (seconds,
    one per frame, increasing) makes a variable-frame-rate file instead of a constant `fps`.
    """
    import av

    stamps = None if timestamps is None else iter(timestamps)
    with av.open(str(path), "w") as out:
        stream = None
        for pixels in frames:
            if stream is None:
                stream = out.add_stream("libx264", rate=fps, options=options or {})
                stream.height, stream.width = pixels.shape[:2]
                stream.pix_fmt = "yuv420p"
                if stamps is not None:
                    stream.codec_context.time_base = Fraction(1, 1000)
                if gop:
                    stream.codec_context.gop_size = gop
                if rotation:
                    stream.set_display_rotation(rotation)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if stamps is not None:
                frame.pts, frame.time_base = int(round(next(stamps) * 1000)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)


def open_video(uri: str, prefer: str = DEFAULT_BACKEND, media: MediaReader = LocalFiles()):
    """A reader for a local path or s3:// uri, trying `prefer` first and the other backend if it cannot open it.

    S3 objects are opened by `media` (the media store's reader: byte ranges, never downloaded whole) and read
    through PyAV; a local path goes to the backend as a path. Raises MediaProblem with every backend's reason
    when none can open the file: the caller quarantines it.
    """
    if prefer not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    order = [prefer] + [b for b in BACKENDS if b != prefer]
    reasons: dict[str, str] = {}
    for name in order:
        if uri.startswith("s3://") and name == "decord":
            continue
        try:
            if name == "decord":
                return DecordReader(uri)
            try:
                source = media.open(uri) if uri.startswith("s3://") else uri
            except OSError as exc:
                raise MediaProblem(str(exc)) from None
            return PyAVReader(source)
        except MediaProblem as exc:
            reasons[name] = exc.reason
            log.info("%s cannot open %s: %s", name, uri, exc.reason)
    # PyAV's reason first: FFmpeg says what is wrong with the file ("no video stream", "invalid data")
    raise MediaProblem("; ".join(f"{name}: {reasons[name]}" for name in BACKENDS if name in reasons))


@dataclass(frozen=True)
class SampledFrame:
    ts: float
    reason: str  # "interval" or "scene-change" (the `frames` table's reason column)
    image: Image.Image


HIST_BINS = 64  # 4x4x4 RGB
THUMB = 16  # side of the layout thumbnail


def frame_signature(image: Image.Image) -> np.ndarray:
    """A colour histogram (4x4x4 RGB bins, L1-normalised) and a 16x16 layout thumbnail, in one vector.

    The histogram catches a change of colours, the thumbnail a change of layout with the same colours (two
    packshots on one white background).
    """
    small = np.asarray(image.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.uint8)
    codes = (small // 64).astype(np.int32)
    codes = codes[..., 0] * 16 + codes[..., 1] * 4 + codes[..., 2]
    hist = np.bincount(codes.ravel(), minlength=HIST_BINS).astype(np.float32)
    thumb = np.asarray(image.convert("RGB").resize((THUMB, THUMB), Image.BILINEAR), dtype=np.float32) / 255.0
    return np.concatenate([hist / hist.sum(), thumb.ravel()])


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """0 = same picture, 1 = nothing in common: the larger of the histogram distance (half L1) and four times
    the mean absolute difference of the thumbnails (a quarter of the range on average counts as a full cut)."""
    hist = 0.5 * float(np.abs(a[:HIST_BINS] - b[:HIST_BINS]).sum())
    layout = 4.0 * float(np.abs(a[HIST_BINS:] - b[HIST_BINS:]).mean())
    return min(1.0, max(hist, layout))


def sample_frames(
    reader,
    every_s: float = 1.0,
    scene_threshold: float = 0.35,
    refine_s: float = 0.25,
    start_s: float = 0.0,
    end_s: float | None = None,
) -> Iterator[SampledFrame]:
    """Interval frames, then one frame right after each scene change, located to within `refine_s`.

    `start_s`/`end_s` restrict sampling to a time range, the unit a long video is split into for Ray.
    Pass 1 streams the interval samples and remembers only their signatures. Between two consecutive samples
    whose signatures differ by more than `scene_threshold` there is a cut; pass 2 bisects each such gap with
    a few extra decoded frames (log2(every_s / refine_s) per cut, all cuts per round in one ascending sweep),
    so the cost grows with the sampled frames and the cuts, never with the frames in the file.
    """
    end = reader.info.duration_s if end_s is None else min(end_s, reader.info.duration_s)
    # the grid stays aligned to the start of the file, so time ranges of one video tile without overlap; the
    # first sample of the next range is decoded too (not yielded) so that a cut between ranges is found
    grid = interval_timestamps(reader.info.duration_s, every_s)
    stamps = [t for t in grid if start_s - 1e-9 <= t < end - 1e-9]
    lookahead = [t for t in grid if t >= end - 1e-9][:1]
    signatures: list[tuple[float, np.ndarray]] = []
    for frame in reader.frames_at(stamps + lookahead):
        signatures.append((frame.ts, frame_signature(frame.image)))
        if frame.ts < end - 1e-9:
            yield SampledFrame(frame.ts, "interval", frame.image)
    gaps = [
        [t0, s0, t1, s1, None]
        for (t0, s0), (t1, s1) in zip(signatures, signatures[1:], strict=False)
        if signature_distance(s0, s1) > scene_threshold
    ]
    while gaps and any(g[2] - g[0] > refine_s for g in gaps):
        open_gaps = [g for g in gaps if g[2] - g[0] > refine_s]
        mids = {round((g[0] + g[2]) / 2, 4): g for g in open_gaps}
        seen = set()
        for frame in reader.frames_at(sorted(mids)):
            gap = min(open_gaps, key=lambda g, ts=frame.ts: abs((g[0] + g[2]) / 2 - ts))
            seen.add(id(gap))
            if not gap[0] < frame.ts < gap[2]:  # no frame strictly inside: the boundary is as fine as it gets
                gap[0] = gap[2]
                continue
            signature = frame_signature(frame.image)
            if signature_distance(gap[1], signature) <= signature_distance(signature, gap[3]):
                gap[0], gap[1] = max(frame.ts, gap[0] + 1e-3), signature  # still the old scene: cut is later
            else:
                gap[2], gap[3], gap[4] = frame.ts, signature, frame.image  # already the new scene
        for gap in open_gaps:
            if id(gap) not in seen:  # no frame could be decoded there: keep the coarse boundary
                gap[0] = gap[2]
    for gap in gaps:
        image = gap[4]
        if image is None:  # the cut sits right before an interval sample: that sample starts the scene
            continue
        yield SampledFrame(round(gap[2], 4), "scene-change", image)
