"""What ``alex info`` reports about a store.

Besides ok and failed videos: ``no_audio``, the (video, encoder) pairs where an audio encoder found
no audio track (not a failure), and per encoder the count of those videos (``"no_audio"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alex.store.location import store_location
from alex.store.reader import open_store


def describe_sampling(sampling: dict[str, Any]) -> str:
    rate = f"{sampling['num_frames']} frames/video" if sampling.get("num_frames") is not None else f"{sampling.get('fps', 0):g} fps"
    if sampling.get("clip_frames"):  # clip encoders: clips of F sampled frames every S
        return f"{rate}, clips of {sampling['clip_frames']} every {sampling.get('clip_stride', sampling['clip_frames'])}"
    return rate


def summarize(root: str | Path) -> dict[str, Any]:
    root = store_location(root)
    with open_store(root) as s:
        status = dict(s.con.execute("SELECT status, count(*) FROM videos GROUP BY status").fetchall())
        failed = s.con.execute("SELECT video_id, error FROM videos WHERE status = 'error' ORDER BY video_id").fetchall()
        failed_items = s.con.execute("SELECT video_id, encoder, error FROM _item_errors ORDER BY ALL").fetchall()
        no_audio = s.con.execute("SELECT video_id, encoder FROM _items_no_audio ORDER BY ALL").fetchall()
        no_audio_counts = dict(s.con.execute("SELECT encoder, count(*) FROM _items_no_audio GROUP BY encoder").fetchall())
        counts = {
            enc: (videos, rows)
            for enc, videos, rows in s.con.execute(
                "SELECT encoder, count(*), sum(num_steps) FROM _items_live GROUP BY encoder"
            ).fetchall()
        }
        encoders = [
            {
                "name": name,
                "spec": cfg.get("spec"),
                "dim": cfg.get("dim"),
                "dtype": cfg.get("dtype"),
                "sampling": describe_sampling(cfg.get("sampling", {})),
                "videos": counts.get(name, (0, 0))[0],
                "rows": int(counts.get(name, (0, 0))[1] or 0),
                "no_audio": no_audio_counts.get(name, 0),
            }
            for name, cfg in sorted(s.encoders.items())
        ]
        segments = s.con.execute("SELECT count(DISTINCT segment) FROM _videos_all").fetchone()[0]
        return {
            "store": str(root),
            "format_version": s.config["format_version"],
            "bytes": (sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if s.remote is None
                      else int(s.remote.fs.du(s.remote.path))),
            "segments": segments,
            "videos_ok": status.get("ok", 0),
            "videos_failed": status.get("error", 0),
            "failed": [list(r) for r in failed],
            "failed_items": [list(r) for r in failed_items],
            "no_audio": [list(r) for r in no_audio],
            "encoders": encoders,
        }
