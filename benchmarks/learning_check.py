"""Learning check on the moving-digit videos: test accuracy of each head on each input.

Writes N digit videos, extracts them once with pixels (16 and 32 px) and the tiny random CLIP
at 2 frames/s, trains the attentive probe and the Perceiver on each input, and prints a table of
held-out test accuracy (10 classes: chance 0.1). Usage:

    python benchmarks/learning_check.py [--videos 400] [--out /tmp/alex-learning-check]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import time
from pathlib import Path

from alex.datasets.moving_digits import make_moving_digits
from alex.heads import options_class
from alex.heads.training import train
from alex.pipeline.extract import ExtractOptions, extract

RUNS = [
    ("probe", ["pixels"]),
    ("probe", ["p32"]),
    ("probe", ["clip"]),
    ("perceiver", ["pixels"]),
    ("perceiver", ["p32"]),
    ("perceiver", ["pixels", "clip"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=400)
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-learning-check"))
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    data = make_moving_digits(args.out, num_videos=args.videos)
    store = args.out / "store"
    started = time.perf_counter()
    extract(ExtractOptions(videos=data.videos, store=store, encoders=["pixels", "p32=pixels:32", "clip:tiny@random"], fps=2.0))
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}; "
          f"{args.videos} videos extracted in {time.perf_counter() - started:.1f} s")
    print("| head | inputs | train / val / test videos | epochs run | val accuracy | test accuracy | test macro F1 | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    import json

    from alex.datasets.tiny_models import make_tiny_t5
    from alex.heads.t5 import T5Options

    captions = [json.loads(line)["text"] for line in data.captions.read_text().splitlines()]
    tiny_t5 = make_tiny_t5(args.out / "tiny-t5", captions)
    for inputs in (["p32"], ["pixels"]):
        started = time.perf_counter()
        metrics = train(T5Options(features=store, labels=data.captions, output=args.out / "runs" / f"t5-{'-'.join(inputs)}",
                                  model=str(tiny_t5), inputs=inputs, epochs=args.epochs, learning_rate=2e-3, device="cpu"))
        v = metrics["videos"]
        print(f"| t5 (tiny, captions) | {', '.join(inputs)} | {v['train']} / {v['validation']} / {v['test']} | {metrics['epochs']:.0f} | "
              f"{metrics['validation']['exact_match']:.3f} (exact match) | {metrics['test']['exact_match']:.3f} (exact match) | - | "
              f"{time.perf_counter() - started:.1f} |", flush=True)
    from alex.datasets.tiny_models import make_tiny_llama
    from alex.heads.llm import LLMOptions

    tiny_llama = make_tiny_llama(args.out / "tiny-llama", captions + ["Describe the video."])
    for task, labels in (("caption", data.captions), ("action", data.actions)):
        started = time.perf_counter()
        metrics = train(LLMOptions(features=store, labels=labels, output=args.out / "runs" / f"llm-{task}",
                                   model=str(tiny_llama), task=task, inputs=["p32"], lm="full", epochs=args.epochs,
                                   learning_rate=2e-3, device="cpu"))
        v, test, val = metrics["videos"], metrics["test"], metrics["validation"]
        if task == "caption":
            shown = (f"{val['exact_match']:.3f} (exact match)", f"{test['exact_match']:.3f} (exact match)")
        else:
            shown = (f"{val['action_mse']:.3f} (action MSE)",
                     f"{test['action_mse']:.3f} MSE; {test['action_mse_after_first_frame']:.3f} after the first frame; "
                     f"{test['action_mse_of_mean']:.3f} predicting the mean")
        print(f"| llm (tiny Llama, {task}, lm full) | p32 | {v['train']} / {v['validation']} / {v['test']} | {metrics['epochs']:.0f} | "
              f"{shown[0]} | {shown[1]} | - | {time.perf_counter() - started:.1f} |", flush=True)
    for head, inputs in RUNS:
        started = time.perf_counter()
        metrics = train(options_class(head)(features=store, labels=data.labels, output=args.out / "runs" / f"{head}-{'-'.join(inputs)}",
                                            inputs=inputs, epochs=args.epochs, hidden_size=64, device="cpu"))
        v = metrics["videos"]
        print(f"| {head} | {', '.join(inputs)} | {v['train']} / {v['validation']} / {v['test']} | {metrics['epochs']:.0f} | "
              f"{metrics['validation']['accuracy']:.3f} | {metrics['test']['accuracy']:.3f} | "
              f"{metrics['test']['macro_f1']:.3f} | {time.perf_counter() - started:.1f} |", flush=True)


if __name__ == "__main__":
    main()
