"""Frame readers on small videos this test writes with PyAV (libx264): timestamps, both backends, bad files."""

import av
import numpy as np
import pytest

from ml.media import MediaProblem
from ml.video import DecordReader, PyAVReader, interval_timestamps, open_video, write_h264

FPS = 10


def colour_at(second: int) -> tuple[int, int, int]:
    return ((second * 40) % 256, 255 - (second * 40) % 256, 128)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """6 s of 160x120 H.264 at 10 fps, GOP 25; second k is filled with colour_at(k)."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    frames = (np.full((120, 160, 3), colour_at(i // FPS), np.uint8) for i in range(6 * FPS))
    write_h264(str(path), frames, FPS, gop=25)
    return path


def test_interval_timestamps():
    assert interval_timestamps(3.0, 1.0) == [0.0, 1.0, 2.0]
    assert interval_timestamps(3.5, 1.0) == [0.0, 1.0, 2.0, 3.0]
    assert interval_timestamps(1.0, 0.25) == [0.0, 0.25, 0.5, 0.75]
    assert interval_timestamps(0.0) == []
    with pytest.raises(ValueError):
        interval_timestamps(3.0, 0)


@pytest.mark.parametrize("reader_cls", [PyAVReader, DecordReader])
def test_sampled_frames_are_the_right_ones(clip, reader_cls):
    reader = reader_cls(str(clip))
    assert reader.info.duration_s == pytest.approx(6.0, abs=0.15)
    assert (reader.info.width, reader.info.height) == (160, 120)
    frames = list(reader.frames_at([0.0, 1.0, 2.5, 3.0, 5.0, 5.05]))
    reader.close()
    # 5.0 and 5.05 fall on distinct frames at 10 fps; a stamp past the end yields nothing
    assert [f.ts for f in frames] == pytest.approx([0.0, 1.0, 2.5, 3.0, 5.0, 5.1], abs=0.051)
    for frame in frames:
        got = np.asarray(frame.image)[60, 80].astype(int)
        assert np.abs(got - np.array(colour_at(int(frame.ts + 1e-6)))).max() < 12, (frame.ts, got)


class CountingContainer:
    """Wraps a PyAV container: counts its seeks and the frames its decoders hand out (the reader's real work)."""

    def __init__(self, container):
        self._container = container
        self.seeks = 0
        self.decoded = 0

    def seek(self, *args, **kwargs):
        self.seeks += 1
        return self._container.seek(*args, **kwargs)

    def decode(self, *args, **kwargs):
        for frame in self._container.decode(*args, **kwargs):
            self.decoded += 1
            yield frame

    def __getattr__(self, name):
        return getattr(self._container, name)


def counted_frames(path, timestamps) -> tuple[list[float], CountingContainer]:
    reader = PyAVReader(str(path))
    counter = reader.container = CountingContainer(reader.container)
    stamps = [f.ts for f in reader.frames_at(timestamps)]
    reader.close()
    return stamps, counter


def test_pyav_seeks_forward_over_long_gaps(clip):
    # 4.9 s ahead is past the GOP (25 frames at 10 fps; x264 adds keyframes at the colour cuts too): one seek back
    # to the keyframe before 4.9 s and at most a GOP decoded from there, not 49 frames forward (measured: 11)
    stamps, counter = counted_frames(clip, [0.0, 4.9])
    assert stamps == pytest.approx([0.0, 4.9], abs=0.051)
    assert counter.seeks == 2  # the one every read starts with (to 0.0), and the one over the gap
    assert counter.decoded <= 1 + 25, counter.decoded
    # a gap under the GOP decodes forward: the first seek only, and every frame in between
    stamps, counter = counted_frames(clip, [0.0, 0.9])
    assert stamps == pytest.approx([0.0, 0.9], abs=0.051)
    assert (counter.seeks, counter.decoded) == (1, 10)


def test_bad_videos_are_refused_with_both_reasons(tmp_path):
    fake = tmp_path / "lies.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(MediaProblem) as info:
        open_video(str(fake))
    assert "pyav:" in info.value.reason and "decord:" in info.value.reason
    assert info.value.reason.index("pyav:") < info.value.reason.index("decord:")  # FFmpeg's words first
    assert "[" not in info.value.reason.split("decord:")[1][:3]  # decord's log prefix is cut off

    photo = tmp_path / "holiday.mov"
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 40, 40)).save(photo, "JPEG")
    with pytest.raises(MediaProblem, match="not a video: the file is a JPEG image"):
        open_video(str(photo))

    audio = tmp_path / "voice.mp4"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(MediaProblem, match="no video stream"):
        PyAVReader(str(audio))


def test_falls_back_to_the_other_backend(clip):
    reader = open_video(str(clip), prefer="decord")
    assert reader.info.backend == "decord"
    reader.close()
    with pytest.raises(ValueError):
        open_video(str(clip), prefer="opencv")


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory):
    """8 s at 10 fps: a grey scene, a hard cut to red at 2.6 s, a cut to blue at 6.3 s."""
    path = tmp_path_factory.mktemp("video") / "cuts.mp4"

    def colour(t: float) -> tuple[int, int, int]:
        return (120, 120, 120) if t < 2.6 else (220, 30, 30) if t < 6.3 else (30, 40, 220)

    write_h264(str(path), (np.full((120, 160, 3), colour(i / FPS), np.uint8) for i in range(8 * FPS)), FPS)
    return path


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_scene_changes_are_found_between_interval_samples(cut_clip, backend):
    from ml.video import sample_frames

    reader = open_video(str(cut_clip), prefer=backend)
    frames = list(sample_frames(reader, every_s=1.0, refine_s=0.25))
    reader.close()
    interval = [f.ts for f in frames if f.reason == "interval"]
    cuts = [f.ts for f in frames if f.reason == "scene-change"]
    assert interval == pytest.approx([0, 1, 2, 3, 4, 5, 6, 7], abs=0.051)
    assert len(cuts) == 2
    assert cuts[0] == pytest.approx(2.6, abs=0.25) and cuts[1] == pytest.approx(6.3, abs=0.25)
    assert cuts[0] >= 2.6 - 1e-6 and cuts[1] >= 6.3 - 1e-6  # the frame shown is already the new scene


def test_inspect_media_probes_videos_and_quarantines_bad_ones(clip, tmp_path):
    from ml.inspect import inspect_media

    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[:2000])
    liar = tmp_path / "photo.mov"
    liar.write_text("not a video at all")
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    rows = {r["uri"].rsplit("/", 1)[-1]: r for r in inspect_media([str(clip), str(truncated), str(liar), str(empty)])}
    good = rows["clip.mp4"]
    assert (good["kind"], good["width"], good["height"]) == ("video", 160, 120)
    assert good["duration_s"] == pytest.approx(6.0, abs=0.15) and good["status"] == "ok"
    for name in ("cut.mp4", "photo.mov", "empty.webm"):
        assert rows[name]["status"] == "quarantined" and rows[name]["error"], rows[name]
    assert "empty file" in rows["empty.webm"]["error"]


def test_video_ranges_tile_and_embed_with_timestamps(cut_clip, tmp_path, model_root):
    import polars as pl

    from ml.backbones import BackboneSpec
    from ml.video_embedding import embed_video_range, time_ranges

    assert time_ranges(8.0, 3.0) == [(0.0, 3.0), (3.0, 6.0), (6.0, 8.0)]
    spec = BackboneSpec(cache_dir=str(model_root))
    results = [
        embed_video_range(spec, "v" * 64, str(cut_clip), a, b, str(tmp_path / f"r{i}.parquet"))
        for i, (a, b) in enumerate(time_ranges(8.0, 3.0))
    ]
    assert all(r.error is None for r in results)
    frames = [f for r in results for f in r.frames]
    interval = sorted(f["ts"] for f in frames if f["reason"] == "interval")
    assert interval == pytest.approx([0, 1, 2, 3, 4, 5, 6, 7], abs=0.051)  # ranges tile: no gap, no overlap
    assert len([f for f in frames if f["reason"] == "scene-change"]) == 2
    table = pl.read_parquet(tmp_path).sort("ts")
    assert table.height == len(frames) and table["ts"].is_not_null().all()
    vectors = np.stack(table["vector"].to_numpy())
    grey, red = vectors[0], vectors[table["ts"].to_list().index(4.0)]
    assert float(grey @ red) < 0.99  # different scenes, different vectors
    bad = embed_video_range(spec, "x" * 64, str(tmp_path / "missing.mp4"), 0, 3, str(tmp_path / "bad.parquet"))
    assert bad.error and bad.out_path is None


def test_a_range_runs_an_ensemble_as_its_parts_once(cut_clip, tmp_path, model_root, monkeypatch):
    """A facet reading the ensemble and another reading one of its parts: the part runs once per frame batch and
    the ensemble's frame vectors are the parts' joined (what the ensemble backbone computes on its own)."""
    import polars as pl
    from PIL import Image

    from ml.backbones import BackboneSpec, cached_backbone
    from ml.backbones.concat import concat_name, join
    from ml.video_embedding import embed_video_range

    base, views = "efficientnet-lite0", "efficientnet-lite0-views:224/avg/center"
    spec = BackboneSpec(name=base, cache_dir=str(model_root), threads=1)
    pair = BackboneSpec(name=concat_name([base, views]), cache_dir=str(model_root), threads=1)
    alone = BackboneSpec(name=views, cache_dir=str(model_root), threads=1)
    runs: dict[str, int] = {}
    for s in (spec, alone):
        backbone = cached_backbone(s)
        forward = backbone.forward

        def counted(batch, forward=forward, key=backbone.model_id):
            runs[key] = runs.get(key, 0) + 1
            return forward(batch)

        monkeypatch.setattr(backbone, "forward", counted)
    more = [(pair, str(tmp_path / "pair.parquet")), (alone, str(tmp_path / "views.parquet"))]
    result = embed_video_range(spec, "v" * 64, str(cut_clip), 0.0, 8.0, str(tmp_path / "base.parquet"), more=more)
    assert result.error is None and set(runs) == {cached_backbone(spec).model_id, cached_backbone(alone).model_id}
    assert len(set(runs.values())) == 1  # each part once per batch, whoever reads it
    read = {n: pl.read_parquet(tmp_path / f"{n}.parquet").sort("ts") for n in ("base", "views", "pair")}
    assert read["pair"]["ts"].to_list() == read["base"]["ts"].to_list()
    vectors = {n: np.stack(t["vector"].to_numpy()) for n, t in read.items()}
    assert np.allclose(vectors["pair"], join([vectors["base"], vectors["views"]]), atol=1e-6)
    frame = Image.new("RGB", (160, 120), (200, 30, 30))
    on_its_own = cached_backbone(pair).embed([frame])
    assert np.allclose(
        on_its_own, join([cached_backbone(spec).embed([frame]), cached_backbone(alone).embed([frame])]), atol=1e-5
    )


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_rotated_phone_video_is_turned_upright(tmp_path, backend):
    """Coded landscape 64x32 with a red left half and a 90-degree display matrix: shown as 32x64, red below."""
    path = tmp_path / "phone.mp4"
    pixels = np.zeros((32, 64, 3), np.uint8)
    pixels[:, :32] = (255, 0, 0)
    write_h264(str(path), (pixels for _ in range(20)), 10, rotation=90)
    reader = open_video(str(path), prefer=backend)
    assert reader.name == backend
    assert (reader.info.width, reader.info.height) == (32, 64)
    assert reader.info.rotation == (90 if backend == "pyav" else None)  # decord turns frames but does not say
    (frame,) = list(reader.frames_at([1.0]))
    reader.close()
    shown = np.asarray(frame.image).astype(int)
    assert shown.shape == (64, 32, 3)
    assert shown[56, 16, 0] > 200 and shown[8, 16, 0] < 60, (shown[56, 16], shown[8, 16])


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_variable_frame_rate_uses_real_timestamps(tmp_path, backend):
    """Frames at uneven times (a burst, then a 1.5 s hold): each sample is the frame shown at that time."""
    path = tmp_path / "vfr.mp4"
    stamps = [0.0, 0.1, 0.2, 0.3, 1.8, 1.9, 2.6, 3.0, 3.05, 3.1, 4.0]
    frames = [np.full((48, 64, 3), (int(t * 50), 100, 30), np.uint8) for t in stamps]
    write_h264(str(path), frames, 10, timestamps=stamps)
    reader = open_video(str(path), prefer=backend)
    got = list(reader.frames_at([0.0, 1.0, 2.0, 3.0]))
    reader.close()
    # the first frame at or after each wanted time
    assert [f.ts for f in got] == pytest.approx([0.0, 1.8, 2.6, 3.0], abs=0.011)
    for frame in got:
        assert abs(int(np.asarray(frame.image)[24, 32, 0]) - int(frame.ts * 50)) < 10


def test_range_task_reads_printed_text_on_sampled_frames(tmp_path, model_root):
    from PIL import Image, ImageDraw, ImageFont

    from ml.backbones import BackboneSpec
    from ml.ocr import OcrSpec
    from ml.video_embedding import embed_video_range

    def frame(text: str | None) -> np.ndarray:
        image = Image.new("RGB", (320, 180), (230, 230, 225))
        if text:
            ImageDraw.Draw(image).text((60, 60), text, fill=(10, 10, 10), font=ImageFont.load_default(size=36))
        return np.asarray(image)

    path = tmp_path / "label.mp4"
    frames = [frame(None)] * (2 * FPS) + [frame("AS-100")] * (2 * FPS)  # text from 2 s on
    write_h264(str(path), frames, FPS)
    spec = BackboneSpec(cache_dir=str(model_root))
    result = embed_video_range(spec, "v" * 64, str(path), 0.0, 4.0, str(tmp_path / "e.parquet"), ocr=OcrSpec())
    assert result.error is None
    read = {(row["ts"], row["text"].replace(" ", "")) for row in result.text}
    assert {t for t, _ in read} >= {2.0, 3.0} and {text for _, text in read} == {"AS-100"}
    assert all(row["ts"] >= 2.0 - 0.3 for row in result.text)  # nothing read before the text appears
    assert result.seconds["ocr"] > 0


def test_range_task_keeps_orb_features_of_every_sampled_frame(cut_clip, tmp_path, model_root):
    import polars as pl

    from ml.backbones import BackboneSpec
    from ml.keypoints import Features, KeypointSpec
    from ml.video_embedding import embed_video_range

    spec = BackboneSpec(cache_dir=str(model_root))
    out = tmp_path / "kp" / "r.parquet"
    result = embed_video_range(
        spec,
        "v" * 64,
        str(cut_clip),
        0.0,
        8.0,
        str(tmp_path / "e.parquet"),
        keypoints=KeypointSpec(),
        keypoints_out=str(out),
    )
    table = pl.read_parquet(out)
    assert sorted(table["ts"].to_list()) == sorted(f["ts"] for f in result.frames)  # every frame, interval and cut
    restored = Features.from_bytes(table["xy"][0], table["desc"][0])
    assert restored.desc.shape[1] == 32 and len(restored.xy) == len(restored.desc)
