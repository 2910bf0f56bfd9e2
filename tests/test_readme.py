"""The README's commands work: set-up and test commands match CI, and the offline tour runs."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
CI = Path(__file__).resolve().parents[1] / ".ci" / "run"


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(heading above, body) of every fenced block."""
    blocks, heading = [], ""
    for match in re.finditer(r"^(#+ [^\n]*)$|^```(\w*)\n(.*?)^```", text, flags=re.M | re.S):
        if match.group(1):
            heading = match.group(1)
        else:
            blocks.append((heading, match.group(2), match.group(3)))
    return blocks


def test_readme_opens_with_install_and_test_and_ci_runs_them():
    blocks = code_blocks(README.read_text())
    first = [line for line in blocks[0][2].splitlines() if line.strip()]
    assert first[0].startswith("pip install -e") and "[test]" in first[0]
    ci = CI.read_text()
    assert first[0] in ci and first[1] in ci.splitlines()  # CI runs exactly the README's test command
    assert blocks[1][2].strip() == "alex extract --videos ~/clips"
    setup = README.read_text().split("## Extract", 1)[0]
    assert "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu" in setup  # CPU-only line
    assert 'python -m pytest -q -m "not slow"' in setup and "under 3 minutes" in setup  # the quick subset


@pytest.mark.slow
def test_offline_tour_and_python_api_run(tmp_path):
    blocks = code_blocks(README.read_text())
    tour = next(body for heading, _, body in blocks if "tour" in heading.lower())
    for line in tour.strip().splitlines():
        args = shlex.split(line)
        assert args[0] == "alex"
        result = subprocess.run([sys.executable, "-m", "alex", *args[1:]], cwd=tmp_path, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        if args[1] == "query" and "--format" in args:
            assert result.stdout.splitlines()[0] == '"video_id","t_start","t_end"'
        if args[1] == "info":
            assert "300 ok, 0 failed" in result.stdout
        if args[1] == "evaluate" and args[2] == "runs/probe":
            assert float(result.stdout.split("accuracy ")[1].split(",")[0]) >= 0.5
        if args[1] == "evaluate" and args[2] == "runs/actions":
            assert "action_mse" in result.stdout
        if args[1] == "predict" and args[2] == "runs/captions":
            predictions = pq.read_table(tmp_path / "captions.parquet").to_pylist()
            assert len(predictions) == 300 and predictions[0]["prompt"] == "caption:" and predictions[0]["text"] is not None
    for python in [body for _, lang, body in blocks if lang == "python"]:
        result = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_the_offline_multimodal_perceiver_recipe_runs(tmp_path):
    blocks = code_blocks(README.read_text())
    recipe = [body for heading, _, body in blocks if "multimodal perceiver" in heading.lower()]
    assert len(recipe) == 2  # the CREMA-D commands (they need the hub) and the offline try
    assert "--audio-dir CREMA-D/AudioWAV" in recipe[0] and "split_part(video_id, '_', 3)" in recipe[0]
    for line in recipe[1].strip().splitlines():
        args = shlex.split(line)
        command = [sys.executable, *args[1:]] if args[0] == "python" else [sys.executable, "-m", "alex", *args[1:]]
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
    rows = pq.read_table(tmp_path / "av-colour.parquet").to_pylist()
    assert len(rows) == 27 and {r["label"] for r in rows} <= {"red", "green", "blue"}


def test_the_crema_d_labels_query_reads_the_emotion_from_file_names(tmp_path):
    """The recipe's SQL, on a store whose videos are named as CREMA-D's."""
    from alex.datasets.write import write_video
    import numpy as np

    blocks = code_blocks(README.read_text())
    recipe = next(body for heading, _, body in blocks if "multimodal perceiver" in heading.lower())
    query = next(shlex.split(line) for line in recipe.splitlines() if line.startswith("alex query"))
    for stem in ("1001_DFA_ANG_XX", "1002_IEO_SAD_HI"):
        write_video(tmp_path / "VideoFlash" / f"{stem}.flv", [np.zeros((16, 16, 3), np.uint8)] * 3, fps=25, container_format="flv")
    extracted = subprocess.run([sys.executable, "-m", "alex", "extract", "--videos", str(tmp_path / "VideoFlash"), "--store",
                                str(tmp_path / "crema"), "-e", "pixels", "-q"], capture_output=True, text=True, timeout=120)
    assert extracted.returncode == 0, extracted.stderr
    args = query[1:query.index(">")] if ">" in query else query[1:]
    result = subprocess.run([sys.executable, "-m", "alex", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = sorted(result.stdout.strip().splitlines()[1:])
    assert lines == ['"1001_DFA_ANG_XX.flv","ANG"', '"1002_IEO_SAD_HI.flv","SAD"']
