"""`alex train` on two processes (torchrun, gloo on CPU) is the run one process makes with the same
global batch (issue 16): same validation and test metrics, and only rank 0 writes and reports."""

import csv
import json
import subprocess
import sys

import pytest

from alex.datasets.moving_digits import make_moving_digits
from alex.pipeline.extract import ExtractOptions, extract

# Dropout off: each process draws its own masks, which no single process could reproduce.
ARGS = ["--inputs", "pixels", "--epochs", "3", "--batch-size", "8", "--device", "cpu", "--set", "dropout=0"]
TOLERANCE = 1e-4  # losses: the same samples per step, gradients averaged by all-reduce instead of one mean


def run(command, cwd):
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=600)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.slow
def test_two_processes_train_the_run_one_process_trains(tmp_path):
    data = make_moving_digits(tmp_path, num_videos=48, frames=8)
    assert extract(ExtractOptions(videos=data.videos, store=tmp_path / "s", encoders=["pixels:8"], workers=0)).exit_code == 0
    rows = list(csv.DictReader(open(data.labels)))
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:  # 32 training videos: every step splits evenly over 2 processes
        writer = csv.writer(f)
        writer.writerow(["video_id", "label", "split"])
        writer.writerows([r["video_id"], r["label"], "train" if i < 32 else "validation" if i < 40 else "test"]
                         for i, r in enumerate(rows))
    common = ["train", "--store", "s", "--labels", str(labels), *ARGS]
    code, one_out, err = run([sys.executable, "-m", "alex", *common, "-o", "one"], tmp_path)
    assert code == 0, err
    code, two_out, err = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                              "-m", "alex", *common, "-o", "two"], tmp_path)
    assert code == 0, err
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    for split in ("validation", "test"):
        assert one[split]["accuracy"] == two[split]["accuracy"], (one[split], two[split])
        assert abs(one[split]["loss"] - two[split]["loss"]) < TOLERANCE, (one[split], two[split])
    # Rank 0 alone reported and wrote: one report, one TensorBoard event file.
    assert two_out.count("validation: accuracy") == 1 and two_out.count("run folder") == 1, two_out
    assert len(list((tmp_path / "two" / "tensorboard").rglob("events.out.tfevents.*"))) == 1

    code, _, err = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "-m", "alex", *common[:-len(ARGS)], "--inputs", "pixels", "--batch-size", "7", "-o", "odd"], tmp_path)
    assert code != 0 and "--batch-size 7 is the global batch and must divide among the 2 processes" in err
