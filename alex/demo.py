"""``alex demo``: the fully offline tour. Makes moving-digit videos, extracts them with the
offline encoders, and shows the store through SQL and search. Needs no weights and no network."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

DEMO_ENCODERS = ["pixels", "clip:tiny@random"]
DEMO_QUERY = (
    "SELECT v.video_id, v.duration, count(*) AS steps, round(min(f.t_start), 2) AS first_s, "
    "round(max(f.t_start), 2) AS last_s FROM frames f JOIN videos v USING (video_id) "
    "WHERE f.encoder = 'clip' GROUP BY ALL ORDER BY v.video_id LIMIT 5"
)


def run_demo(output: Path, num_videos: int = 60, say: Callable[[str], None] = print, quiet: bool = True) -> dict:
    from alex.datasets.moving_digits import make_moving_digits
    from alex.pipeline.extract import ExtractOptions, extract
    from alex.pipeline.search import search_text
    from alex.store.reader import open_store

    output = Path(output)
    say(f"1/3 writing {num_videos} moving-digit videos to {output / 'videos'} (labels, captions, actions beside them)")
    data = make_moving_digits(output, num_videos=num_videos)
    store = output / "store"
    say(f"2/3 extracting with {', '.join(DEMO_ENCODERS)} (offline encoders: random weights, for a tour only) into {store}")
    report = extract(ExtractOptions(videos=data.videos, store=store, encoders=DEMO_ENCODERS, fps=2.0, quiet=quiet))
    say(f"    {len(report.ok)} videos, {report.frames} frames, {report.up_to_date} already up to date")
    say("3/3 the store through DuckDB:")
    with open_store(store) as s:
        table = s.sql(DEMO_QUERY)
        columns = table.columns
        rows = table.fetchall()
    say(f"    alex query \"{DEMO_QUERY}\" --store {store}")
    say("    " + " | ".join(columns))
    for row in rows:
        say("    " + " | ".join(str(v) for v in row))
    hits = search_text(store, "the digit 7 moves left", k=3, encoder="clip", device="cpu")
    say(f"    alex search \"the digit 7 moves left\" --store {store} -k 3   (random tiny CLIP: scores mean nothing)")
    for hit in hits:
        say(f"    {hit['video_id']} at {hit['t_start']:.2f} s  score {hit['score']:.3f}")
    say(f"next: alex info {store}; alex extract --videos YOUR_VIDEOS (real CLIP weights need the HuggingFace hub)")
    return {"store": store, "data": data, "report": report}
