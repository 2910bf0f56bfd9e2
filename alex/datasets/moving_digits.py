"""Moving handwritten digits: small labelled videos for tests, the demo and learning checks.

Each video shows one real handwritten digit (scikit-learn's bundled UCI digits, 8x8 scans
upscaled) starting near the centre and gliding in one of four directions. It comes with a class label (the digit), a caption
("the digit 7 moves left") and per-frame actions (the velocity in pixels per frame), written as
``labels.csv``, ``captions.jsonl`` and ``actions.parquet`` keyed by ``video_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alex.datasets.write import write_video

DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


@dataclass
class MovingDigit:
    video_id: str
    digit: int
    direction: str
    velocity: tuple[float, float]  # pixels per frame (x right, y down)
    caption: str


@dataclass
class MovingDigits:
    root: Path
    videos: Path
    labels: Path
    captions: Path
    actions: Path
    items: list[MovingDigit]


def _digit_glyph(image: np.ndarray, scale: int) -> np.ndarray:
    """(8, 8) values 0..16 -> (8*scale, 8*scale) uint8 0..255."""
    glyph = np.kron(image / 16.0, np.ones((scale, scale)))
    return (glyph * 255).clip(0, 255).astype(np.uint8)


def make_moving_digits(
    out: str | Path,
    num_videos: int = 60,
    frames: int = 20,
    fps: int = 10,
    size: int = 64,
    scale: int = 3,
    speed: float = 1.0,
    seed: int = 0,
) -> MovingDigits:
    """Write ``num_videos`` videos of ``frames`` frames (size x size) and their label files."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    out = Path(out)
    video_dir = out / "videos"
    glyph_size = 8 * scale
    if speed * (frames - 1) > (size - glyph_size) / 2 - 1:
        raise ValueError(f"a digit moving {speed} px/frame for {frames} frames leaves the {size}px canvas")
    items: list[MovingDigit] = []
    action_rows: dict[str, list] = {"video_id": [], "timestamp": [], "actions": []}
    for n in range(num_videos):
        sample = int(rng.integers(len(digits.images)))
        digit = int(digits.target[sample])
        direction = list(DIRECTIONS)[int(rng.integers(4))]
        dx, dy = (d * speed for d in DIRECTIONS[direction])
        # Start near the centre (a pixel of jitter) and glide outwards: the path stays on the canvas.
        x0, y0 = (size - glyph_size) / 2 + rng.uniform(-1, 1, size=2)
        glyph = _digit_glyph(digits.images[sample], scale)
        video_frames = []
        for t in range(frames):
            canvas = np.zeros((size, size), dtype=np.uint8)
            x, y = int(round(x0 + dx * t)), int(round(y0 + dy * t))
            canvas[y : y + glyph_size, x : x + glyph_size] = glyph
            video_frames.append(np.repeat(canvas[:, :, None], 3, axis=2))
        video_id = f"digit_{n:04d}.mp4"
        write_video(video_dir / video_id, video_frames, fps=fps)
        items.append(MovingDigit(video_id, digit, direction, (dx, dy), f"the digit {digit} moves {direction}"))
        for t in range(frames):
            action_rows["video_id"].append(video_id)
            action_rows["timestamp"].append(t / fps)
            action_rows["actions"].append([dx, dy])
    labels = out / "labels.csv"
    labels.write_text("video_id,label,direction\n" + "".join(f"{i.video_id},{i.digit},{i.direction}\n" for i in items))
    captions = out / "captions.jsonl"
    captions.write_text("".join(json.dumps({"video_id": i.video_id, "text": i.caption}) + "\n" for i in items))
    actions = out / "actions.parquet"
    pq.write_table(pa.table(action_rows), actions)
    return MovingDigits(out, video_dir, labels, captions, actions, items)
