from fractions import Fraction

import av
import numpy as np
import pytest

from alex.errors import VideoDecodeError
from alex.pipeline.decode import VideoReader, frame_to_rgb
from tests.conftest import make_bad_videos
from tests.fixtures.videos import frame_image, level, make_video

FORMATS = {
    "clip.gif": dict(codec="gif", pix_fmt="gray"),
    "clip.webm": dict(codec="libvpx-vp9"),
    "clip.avi": dict(codec="mpeg4"),
    "clip.flv": dict(codec="flv"),
    "clip.mkv": dict(codec="libx264"),
    "odd_10bit_444.mkv": dict(codec="libx264", pix_fmt="yuv444p10le", width=63, height=47),
    "ffv1_444.mkv": dict(codec="ffv1", pix_fmt="yuv444p"),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_containers_and_pixel_formats_decode_with_true_times(tmp_path, name):
    kwargs = {"width": 64, "height": 48, **FORMATS[name]}
    path = make_video(tmp_path / name, num_frames=12, fps=10, **kwargs)
    with VideoReader(path) as reader:
        decoded = [(t, frame_to_rgb(f, reader.rotation)) for t, _, f in reader.frames()]
        info = reader.info()
    assert [t for t, _ in decoded] == pytest.approx([i / 10 for i in range(12)], abs=1e-6)
    for i, (_, rgb) in enumerate(decoded):
        assert rgb.shape == (kwargs["height"], kwargs["width"], 3) and rgb.dtype == np.uint8
        assert abs(float(rgb.mean()) - level(i)) < 6, f"frame {i} of {name} is not the frame written"
    assert (info.width, info.height) == (kwargs["width"], kwargs["height"])
    assert info.duration == pytest.approx(1.2, abs=1e-6)


def test_rotation_metadata_is_applied(tmp_path):
    # FFmpeg's "rotate 90" (clockwise, a phone held upright): display matrix angle -90.
    path = make_video(tmp_path / "rot.mp4", num_frames=5, width=64, height=48, rotation=-90, marker=True)
    with VideoReader(path) as reader:
        _, _, frame = next(reader.frames())
        rgb = frame_to_rgb(frame, reader.rotation)
        info = reader.info()
    assert rgb.shape == (64, 48, 3)  # displayed portrait
    assert (info.width, info.height, info.rotation) == (48, 64, 270)
    # Clockwise quarter turn: the red top-left quarter ends up top-right.
    assert rgb[:20, -20:, 0].mean() > 200 and rgb[:20, -20:, 1].mean() < 60
    assert rgb[-20:, :20, 0].mean() < 100


def test_first_default_video_stream_is_used(tmp_path):
    path = tmp_path / "two.mkv"
    container = av.open(str(path), "w")
    main = container.add_stream("libx264", rate=10)
    main.width, main.height, main.pix_fmt = 64, 48, "yuv420p"
    other = container.add_stream("libx264", rate=10)
    other.width, other.height, other.pix_fmt = 32, 32, "yuv420p"
    for i in range(10):
        for stream, (w, h) in ((main, (64, 48)), (other, (32, 32))):
            frame = av.VideoFrame.from_ndarray(frame_image(i if stream is main else 9 - i, w, h), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            for packet in stream.encode(frame):
                container.mux(packet)
    for stream in (main, other):
        for packet in stream.encode():
            container.mux(packet)
    container.close()
    with VideoReader(path) as reader:
        frames = list(reader.frames())
        assert reader.info().width == 64
    assert len(frames) == 10
    assert abs(frame_to_rgb(frames[2][2], 0).mean() - level(2)) < 6


def test_num_frames_bounds_come_from_a_demux_pass(tmp_path):
    path = make_video(tmp_path / "v.mp4", times=[0.0, 0.4, 0.5, 1.75])
    with VideoReader(path) as reader:
        assert reader.time_bounds() == (0.0, 1.75)
        assert [t for t, _, _ in reader.frames()] == [0.0, 0.4, 0.5, 1.75]  # rewound after the pass


def test_each_bad_input_kind_is_a_decode_error_with_its_reason(tmp_path):
    expected = make_bad_videos(tmp_path)
    for name, words in expected.items():
        with pytest.raises(VideoDecodeError) as info:
            with VideoReader(tmp_path / name) as reader:
                for _ in reader.frames():
                    pass
        assert words in info.value.reason, (name, info.value.reason)
        assert "\n" not in info.value.reason and str(tmp_path) not in info.value.reason
