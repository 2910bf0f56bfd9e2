"""Learning check of the perceiver-mm head (seeds/002) through `alex train`, on a synthetic
audio-visual set where one task is carried by the audio alone and one by the picture alone.

Writes N FLV videos with WAV files beside them (CREMA-D's layout), extracts them once with
`--encoder perceiver-mm:tiny@random --audio-dir`, then fine-tunes `--model tiny@random` on each task
and learning rate and prints test accuracy (3 balanced classes: chance is 0.33):

- colour: a coloured square, only in the picture;
- buzz: a buzzer's duty cycle (on 5/50/95 % of the time), only in the audio;
- tone: a tone's pitch (220/1100/5500 Hz), only in the audio (a separate set of videos).

    python benchmarks/perceiver_mm_learning.py [--num-videos 90] [--lrs 0.01,0.001] [--out /tmp/alex-pmm-check]
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

from alex.datasets.audio_visual import make_audio_visual
from alex.pipeline.extract import ExtractOptions, extract


def alex_train(store: Path, labels: Path, run: Path, lr: str) -> tuple[dict, float]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "alex", "train", "--head", "perceiver-mm", "--model", "tiny@random",
                    "--store", str(store), "--labels", str(labels), "--output", str(run), "--lr", lr, "-q"],
                   check=True, capture_output=True, text=True)
    return json.loads((run / "metrics.json").read_text()), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-videos", "--videos", dest="videos", type=int, default=90)
    parser.add_argument("--lrs", default="0.01,0.0003")
    parser.add_argument("--tasks", default="colour,buzz,tone")
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-pmm-check"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    sets = {}
    for sound in ("buzz", "tone"):
        data = make_audio_visual(args.out / sound, num_videos=args.videos, seed=1, sound=sound)
        store = args.out / sound / "store"
        extract(ExtractOptions(videos=data.videos, store=store, encoders=["perceiver-mm:tiny@random"], workers=1,
                               audio_dir=data.audio_dir))
        sets[sound] = (data, store)
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"{args.videos} videos per set, perceiver-mm:tiny@random, `alex train --head perceiver-mm --model tiny@random` "
          "with its defaults (batch 2, 10 epochs, early stopping) and --lr as shown")
    print(f"{'task':8} {'carried by':10} {'lr':>7} {'val acc':>8} {'test acc':>9} {'epochs':>7} {'seconds':>8}")
    for task in args.tasks.split(","):
        data, store = sets["tone" if task == "tone" else "buzz"]
        labels = data.labels_colour if task == "colour" else data.labels_tone
        for lr in args.lrs.split(","):
            metrics, seconds = alex_train(store, labels, args.out / "runs" / f"{task}-{lr}", lr)
            print(f"{task:8} {'picture' if task == 'colour' else 'audio':10} {lr:>7} {metrics['validation']['accuracy']:8.3f} "
                  f"{metrics['test']['accuracy']:9.3f} {metrics['epochs']:7.0f} {seconds:8.1f}", flush=True)


if __name__ == "__main__":
    main()
