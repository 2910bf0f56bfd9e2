from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.videos import make_audio_only, make_video

# No test may reach the network: a hub lookup must fail at once, as on an offline machine.
os.environ["HF_HUB_OFFLINE"] = "1"

VFR_TIMES = [0.0, 0.1, 0.15, 0.9, 1.0, 1.37, 2.5, 2.6]


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> Path:
    """A folder of small good videos with known content and timestamps."""
    root = tmp_path_factory.mktemp("clips")
    make_video(root / "a.mp4", num_frames=30, fps=10)
    make_video(root / "b.mp4", num_frames=25, fps=10, width=48, height=32)
    make_video(root / "sub" / "c.mp4", num_frames=20, fps=10)
    make_video(root / "vfr.mp4", times=VFR_TIMES)
    return root


def make_bad_videos(root: Path) -> dict[str, str]:
    """One file of each bad-input kind; returns video_id -> words its error reason must contain."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty.mp4").write_bytes(b"")
    (root / "notavideo.mp4").write_text("this is a text file, not a video\n" * 50)
    source = make_video(root / "_whole.mp4", num_frames=40, fps=10, noise=True)
    whole = source.read_bytes()
    source.unlink()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    corrupt = bytearray(whole)
    start = corrupt.find(b"mdat") + 2000  # inside the coded frames: the container still opens
    corrupt[start : start + 3000] = bytes((i * 151 + 7) % 251 for i in range(3000))
    (root / "corrupt.mp4").write_bytes(bytes(corrupt))
    make_audio_only(root / "audioonly.mp4")
    return {
        "empty.mp4": "empty file",
        "notavideo.mp4": "not a readable video",
        "truncated.mp4": "not a readable video",
        "corrupt.mp4": "decoding failed",
        "audioonly.mp4": "no video stream",
    }
