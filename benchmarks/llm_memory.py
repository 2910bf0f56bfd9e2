"""Memory of the LLM head at real size: a randomly initialised Qwen2-0.5B-shaped checkpoint (Qwen2.5-0.5B's
config: 24 layers, hidden 896, vocabulary 151,936, tied embeddings) is written locally; then, each in a
fresh process, the `llm` head is built around it and saved (the build and save of `alex train`, no
training), for each dtype and LM mode. Prints, side by side:

- RSS above the process's RSS just before building (imports and store done): after building,
  after one forward pass (which touches every weight: safetensors weights are memory-mapped, so
  before that they cost little), and the peak through saving, as a ratio to the checkpoint's own
  size in that dtype (target: at most 1.3);
- the run folder's size against the LM's (target for a frozen LM: under 5%), and whether the run
  loads back exactly (every weight equal to what was saved, and to the base checkpoint).

    python benchmarks/llm_memory.py [--out /tmp/alex-llm-memory] [--dtypes bf16,fp32]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

QWEN2_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, max_position_embeddings=32768, vocab_size=151936, tie_word_embeddings=True,
                 rope_theta=1000000.0, rms_norm_eps=1e-6)


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_checkpoint(folder: Path, dtype: str, words: list[str]) -> None:
    """A random Qwen2 of Qwen2.5-0.5B's shape, saved in ``dtype``, with an offline word tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from alex.datasets.tiny_models import word_tokenizer

    torch.manual_seed(0)
    config = Qwen2Config(pad_token_id=0, bos_token_id=1, eos_token_id=1, **QWEN2_05B)
    with torch.device("meta"):
        model = Qwen2ForCausalLM(config)
    model = model.to_empty(device="cpu").to({"bf16": torch.bfloat16, "fp32": torch.float32}[dtype])
    model.tie_weights()  # to_empty gave the tied embeddings separate storage
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    model.save_pretrained(folder)
    word_tokenizer(words).save_pretrained(folder)


class PeakRSS:
    """This process's largest RSS, sampled every few milliseconds by a thread. (``ru_maxrss`` would
    not do: Linux carries it across exec, so a child started by a large parent inherits its peak.)"""

    def __init__(self, every: float = 0.005):
        import threading

        import psutil

        self.process, self.peak, self.every = psutil.Process(), 0, every
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.done.wait(self.every)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return max(self.peak, self.process.memory_info().rss)


def measure(store: Path, labels: Path, checkpoint: Path, run: Path, dtype: str, lm: str) -> dict:
    """In this (fresh) process: build the head around ``checkpoint``, run it once and save it; RSS
    above the start at each stage; then whether the run loads back exactly."""
    import psutil

    import alex
    from alex.heads.data import select_labelled
    from alex.heads.inputs import input_signature
    from alex.heads.llm import LLMOptions
    from alex.heads.llm.head import HEAD
    from alex.heads.training import save_run

    options = LLMOptions(store=store, labels=labels, output=run, model=str(checkpoint), task="action", inputs=["p32"],
                         lm=lm, dtype=dtype, device="cpu")
    with alex.open_store(store) as s:
        signature = input_signature(s, options.inputs)
        targets = HEAD.read_targets(options.labels, options.split, options.task)
        selection = select_labelled(s, targets, options.inputs, require=["train"])
        import torch  # noqa: F401  (everything imported before the baseline)
        import transformers  # noqa: F401
        from alex.heads.data import make_dataset
        from alex.heads.llm.processing_alex import LLMCollator

        ids = selection.splits["train"][:2]
        before = psutil.Process().memory_info().rss
        sampler = PeakRSS()
        model, processor = HEAD.build(options, s, targets, selection, signature)
        built = psutil.Process().memory_info().rss
        batch = LLMCollator(processor)([make_dataset(s, ids, ["p32"], extras=HEAD.extras(s, ids, targets, model))[i]
                                        for i in range(len(ids))])
        with torch.no_grad():  # one forward pass touches every weight: what running the head really needs
            model(**batch)
        ran = psutil.Process().memory_info().rss
        save_run(run, HEAD.finish(model, options), processor, {"head": "llm", "inputs": ["p32"]})
        peak = sampler.stop()
    del model
    return {"before": before, "built": built, "ran": ran, "peak": peak, "exact": check_round_trip(run, checkpoint)}


def check_round_trip(run: Path, checkpoint: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    from alex.heads import load_head

    head = load_head(run)
    state = head.state_dict()
    saved = load_file(str(run / "model.safetensors"))
    base = {}
    for shard in checkpoint.glob("*.safetensors"):
        base.update(load_file(str(shard)))
    same_saved = all(torch.equal(state[k], v) for k, v in saved.items())
    same_base = all(torch.equal(state[f"language_model.{k}"], v) for k, v in base.items() if f"language_model.{k}" in state)
    return same_saved and same_base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/alex-llm-memory"))
    parser.add_argument("--dtypes", default="bf16,fp32")
    parser.add_argument("--measure", nargs=6, metavar=("STORE", "LABELS", "CHECKPOINT", "RUN", "DTYPE", "LM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        store, labels, checkpoint, run, dtype, lm = args.measure
        print(json.dumps(measure(Path(store), Path(labels), Path(checkpoint), Path(run), dtype, lm)))
        return

    from alex.datasets.moving_digits import make_moving_digits
    from alex.pipeline.extract import ExtractOptions, extract

    shutil.rmtree(args.out, ignore_errors=True)
    data = make_moving_digits(args.out / "data", num_videos=12, seed=1)
    store = args.out / "store"
    extract(ExtractOptions(videos=data.videos, store=store, encoders=["p32=pixels:32"], fps=2.0, workers=0))
    words = [item.caption for item in data.items]
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; Qwen2.5-0.5B-shaped random LM "
          "(494M parameters), llm head on pixels:32 features")
    print("| LM dtype | --lm | checkpoint | RSS above start: built / after a forward pass / peak | peak ratio (target <= 1.3) "
          "| run folder | run / LM | loads back exactly |")
    print("|---|---|---|---|---|---|---|---|")
    for dtype in args.dtypes.split(","):
        checkpoint = args.out / f"qwen2-0.5b-{dtype}"
        subprocess.run([sys.executable, "-c", f"from benchmarks.llm_memory import write_checkpoint; "
                        f"write_checkpoint(__import__('pathlib').Path({str(checkpoint)!r}), {dtype!r}, {words!r})"],
                       check=True, cwd=Path(__file__).resolve().parents[1])
        size = sum(p.stat().st_size for p in checkpoint.glob("*.safetensors"))  # the weights in this dtype
        for lm in ("frozen", "lora", "full"):
            run = args.out / "runs" / f"{dtype}-{lm}"
            out = subprocess.run([sys.executable, __file__, "--measure", str(store), str(data.actions), str(checkpoint),
                                  str(run), dtype, lm], capture_output=True, text=True, check=True)
            rss = json.loads(out.stdout.strip().splitlines()[-1])
            grown = rss["peak"] - rss["before"]
            run_size = folder_bytes(run)
            exact = rss["exact"]
            print(f"| {dtype} | {lm} | {size / 2**20:.0f} MiB | {(rss['built'] - rss['before']) / 2**20:.0f} / "
                  f"{(rss['ran'] - rss['before']) / 2**20:.0f} / {grown / 2**20:.0f} MiB | {grown / size:.2f} | "
                  f"{run_size / 2**20:.1f} MiB | {100 * run_size / size:.2f}% | {exact} |", flush=True)


if __name__ == "__main__":
    main()
