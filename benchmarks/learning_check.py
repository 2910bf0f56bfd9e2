"""Learning check on the moving-digit videos, every head trained through `alex train` (the command
line users run, with its defaults), scored on the held-out test split from the run's metrics.json.

Writes N digit videos, extracts them once with pixels (16 and 32 px) and the tiny random CLIP at
2 frames/s, writes tiny random T5 and Llama checkpoints (with tokenizers built offline), then
trains each head and prints a table. 10 classes: chance is 0.1. Usage:

    python benchmarks/learning_check.py [--num-videos 400] [--out /tmp/alex-learning-check]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from alex.datasets.moving_digits import make_moving_digits
from alex.datasets.tiny_models import make_tiny_llama, make_tiny_t5
from alex.pipeline.extract import ExtractOptions, extract


def alex_train(out: Path, name: str, *args: str) -> tuple[dict, dict, float]:
    """`alex train ... --output RUN`; returns metrics.json, training_config.json and the seconds it took."""
    run = out / "runs" / name
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "alex", "train", *args, "--output", str(run), "-q"], check=True,
                   capture_output=True, text=True)
    seconds = time.perf_counter() - started
    return (json.loads((run / "metrics.json").read_text()), json.loads((run / "training_config.json").read_text()), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-videos", "--videos", dest="videos", type=int, default=400)
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-learning-check"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    data = make_moving_digits(args.out, num_videos=args.videos)
    store = args.out / "store"
    started = time.perf_counter()
    extract(ExtractOptions(videos=data.videos, store=store, encoders=["pixels", "p32=pixels:32", "clip:tiny@random"], fps=2.0))
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"{args.videos} videos extracted in {time.perf_counter() - started:.1f} s; every head through `alex train` "
          "with its defaults unless shown")
    captions = [json.loads(line)["text"] for line in data.captions.read_text().splitlines()]
    t5 = make_tiny_t5(args.out / "tiny-t5", captions + [str(d) for d in range(10)])
    llama = make_tiny_llama(args.out / "tiny-llama", captions + ["Describe the video."])
    common = ["--store", str(store)]
    runs = [
        ("probe", "pixels", [], data.labels),
        ("probe", "p32", [], data.labels),
        ("probe", "p32", ["--clips-per-video", "2"], data.labels),
        ("probe", "clip", [], data.labels),
        ("perceiver", "pixels", [], data.labels),
        ("perceiver", "p32", [], data.labels),
        ("perceiver", "pixels,clip", [], data.labels),
        ("t5", "p32", ["--model", str(t5), "--lr", "0.002"], data.captions),
        ("t5", "pixels", ["--model", str(t5), "--lr", "0.002"], data.captions),
        ("llm", "p32", ["--model", str(llama), "--lm", "full", "--lr", "0.002"], data.captions),
        ("llm", "p32", ["--model", str(llama), "--lm", "full", "--lr", "0.002", "--task", "action"], data.actions),
        ("llm", "p32", ["--model", str(llama), "--task", "action"], data.actions),
    ]
    print("| head | inputs | options | train / val / test videos | epochs run | validation | test | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for index, (head, inputs, options, labels) in enumerate(runs):
        metrics, _, seconds = alex_train(args.out, f"{index}-{head}", *common, "--labels", str(labels), "--head", head,
                                         "--inputs", inputs, *options)
        v, val, test = metrics["videos"], metrics["validation"], metrics["test"]
        if "accuracy" in test:
            shown = (f"accuracy {val['accuracy']:.3f}", f"accuracy **{test['accuracy']:.3f}**, macro F1 {test['macro_f1']:.3f}")
        elif "exact_match" in test:
            shown = (f"exact match {val['exact_match']:.3f}", f"exact match **{test['exact_match']:.3f}**")
        else:
            shown = (f"action MSE {val['action_mse']:.3f}",
                     f"action MSE {test['action_mse']:.3f}; **{test['action_mse_after_first_frame']:.3f}** after each video's "
                     f"first frame; {test['action_mse_of_mean']:.3f} predicting the mean")
        shown_options = " ".join(o if not o.startswith("/") else Path(o).name for o in options) or "defaults"
        print(f"| {head} | {inputs} | {shown_options} | {v['train']} / {v['validation']} / {v['test']} | "
              f"{metrics['epochs']:.0f} | {shown[0]} | {shown[1]} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
