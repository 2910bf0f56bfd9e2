"""The examples ``alex COMMAND --help`` ends with; tests/test_cli.py checks that every main command
has some and that each one parses with the command's real options."""

from __future__ import annotations

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "extract": [
        ("CLIP features at 1 frame/s (downloads ViT-B-32 weights once)", "alex extract --videos videos/ --store s/"),
        ("offline: pixels and a tiny random CLIP, 2 frames/s", "alex extract --videos demo/videos --store s/ -e pixels -e clip:tiny@random --fps 2"),
        ("add an encoder to an existing store (only it runs)", "alex extract --videos demo/videos --store s/ -e big=clip:ViT-L-14@openai"),
    ],
    "info": [("what a store holds", "alex info --store s/"), ("as JSON", "alex info --store s/ --json")],
    "query": [
        ("steps per video", "alex query \"SELECT video_id, count(*) FROM frames GROUP BY 1\" --store s/"),
        ("join your predictions", "alex query \"SELECT v.video_id, p.label FROM videos v JOIN preds p USING (video_id)\" "
                                  "--store s/ --attach preds=preds.parquet"),
    ],
    "search": [("frames closest to a text", "alex search \"a digit moving left\" --store s/ -k 5")],
    "train": [
        ("an attentive probe on pixels", "alex train --store s/ --labels demo/labels.csv --inputs pixels --output runs/probe"),
        ("a captioning T5 head", "alex train --store s/ --labels demo/captions.jsonl --head t5 --model demo/models/tiny-t5 "
                                 "--inputs pixels --output runs/captions --epochs 5"),
        ("continue an interrupted run", "alex train --store s/ --labels demo/labels.csv --inputs pixels --output runs/probe --resume"),
    ],
    "evaluate": [("test-split metrics", "alex evaluate runs/probe --store s/ --labels demo/labels.csv"),
                 ("another split, as JSON", "alex evaluate runs/probe --store s/ --labels demo/labels.csv --split validation --json")],
    "predict": [("one row per video, joinable on video_id", "alex predict runs/probe --store s/ --output preds.parquet")],
    "verify": [("check every segment against the tables", "alex verify --store s/"),
               ("fix what an interrupted write left", "alex verify --store s/ --repair")],
    "compact": [("merge the segments and reclaim space", "alex compact --store s/")],
    "demo": [("the offline tour in ./demo", "alex demo --output demo"), ("a smaller one", "alex demo --output demo --num-videos 60")],
}


def epilog(command: str) -> str:
    """The help's closing block: one example per paragraph (rich keeps paragraphs apart)."""
    lines = [f"{what}:  {line}" for what, line in EXAMPLES.get(command, [])]
    return "\n\n".join(["Examples:", *lines]) if lines else ""
