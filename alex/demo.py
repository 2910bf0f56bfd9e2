"""``alex demo``: the fully offline tour. Makes moving-digit videos, extracts them with the
offline encoders, trains an attentive probe on the cached features, and shows the store through
SQL and search. It also writes tiny random T5 and Llama checkpoints with their tokenizers
(``models/tiny-t5``, ``models/tiny-llama``) so that the generative heads can be tried offline
(``alex train --head t5 --model DEMO/models/tiny-t5``). Needs no weights and no network; a few
minutes on two cores at most."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from alex.errors import UsageError

DEMO_ENCODERS = ["pixels", "clip:tiny@random"]
MIN_VIDEOS = 20
DEMO_QUERY = (
    "SELECT v.video_id, v.duration, count(*) AS steps, round(min(f.t_start), 2) AS first_s, "
    "round(max(f.t_start), 2) AS last_s FROM frames f JOIN videos v USING (video_id) "
    "WHERE f.encoder = 'clip' GROUP BY ALL ORDER BY v.video_id LIMIT 3"
)


def run_demo(output: Path, num_videos: int = 300, say: Callable[[str], None] = print, device: str = "cpu") -> dict:
    from alex.datasets.moving_digits import make_moving_digits
    from alex.datasets.tiny_models import make_tiny_llama, make_tiny_t5
    from alex.heads.probe import ProbeOptions
    from alex.heads.training import train
    from alex.pipeline.extract import ExtractOptions, extract
    from alex.pipeline.search import search_text
    from alex.store.reader import open_store

    if num_videos < MIN_VIDEOS:
        raise UsageError(f"--num-videos {num_videos}: the demo needs at least {MIN_VIDEOS} videos, so that its "
                         "validation and test splits are not empty")
    output = Path(output)
    say(f"1/4 writing {num_videos} moving-digit videos to {output / 'videos'} (labels.csv, captions.jsonl, actions.parquet beside them)")
    data = make_moving_digits(output, num_videos=num_videos)
    words = [item.caption for item in data.items] + [str(d) for d in range(10)] + ["Describe the video."]
    models = output / "models"
    if not (models / "tiny-llama" / "config.json").is_file():
        make_tiny_t5(models / "tiny-t5", words)
        make_tiny_llama(models / "tiny-llama", words)
    say(f"    and tiny random T5 and Llama checkpoints in {models} (tiny-t5, tiny-llama) for the generative heads")
    store = output / "store"
    say(f"2/4 extracting with {', '.join(DEMO_ENCODERS)} at 2 frames/s into {store} (offline encoders: no download)")
    report = extract(ExtractOptions(videos=data.videos, store=store, encoders=DEMO_ENCODERS, fps=2.0))
    say(f"    {len(report.ok)} videos, {report.frames} frames encoded, {report.up_to_date} already up to date")

    run = output / "runs" / "probe"
    say(f"3/4 training an attentive probe on the cached pixels features (no video decoded) into {run}")
    if (run / "metrics.json").exists():
        import json

        metrics = json.loads((run / "metrics.json").read_text())
        say("    (already trained: showing its metrics)")
    else:
        metrics = train(ProbeOptions(store=store, labels=data.labels, output=run, inputs=["pixels"], hidden_size=64,
                                     device=device), say=lambda line: say("    " + line))
    test = metrics["test"]
    say(f"    test accuracy {test['accuracy']:.3f} on {metrics['videos']['test']} held-out videos (10 digits: chance 0.1), "
        f"macro F1 {test['macro_f1']:.3f}")
    say(f"    plots: {run / 'training_curve.png'}, {run / 'confusion_matrix.png'}; TensorBoard: {run / 'tensorboard'}")

    say("4/4 the store through DuckDB:")
    with open_store(store) as s:
        relation = s.sql(DEMO_QUERY)
        columns, rows = relation.columns, relation.fetchall()
    say(f"    alex query \"{DEMO_QUERY}\" --store {store}")
    say("    " + " | ".join(columns))
    for row in rows:
        say("    " + " | ".join(str(v) for v in row))
    hits = search_text(store, "the digit 7 moves left", k=3, encoder="clip", device="cpu")
    say(f"    alex search \"the digit 7 moves left\" --store {store} -k 3   (random tiny CLIP: the scores mean nothing)")
    for hit in hits:
        say(f"    {hit['video_id']} at {hit['t_start']:.2f} s  score {hit['score']:.3f}")
    say(f"next: alex info --store {store}; alex extract --videos YOUR_VIDEOS (real CLIP weights come from the HuggingFace hub)")
    return {"store": store, "data": data, "report": report, "metrics": metrics, "run": run}
