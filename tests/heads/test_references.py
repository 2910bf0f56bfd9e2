"""Several captions or questions per video (MSR-VTT, VQA): every one trained on, captions scored with
BLEU-4 and CIDEr against all of a video's references, questions one by one, one prediction row each."""

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from alex.cli import app
from alex.datasets.tiny_models import make_tiny_llama, make_tiny_t5
from alex.errors import UsageError
from alex.heads.labels import read_labels
from alex.heads.metrics import caption_metrics, exact_match

runner = CliRunner()


def test_rows_of_a_video_group_into_samples(tmp_path):
    path = tmp_path / "l.jsonl"
    rows = [{"video_id": "a", "text": "the digit 7 moves left"}, {"video_id": "a", "text": "a seven going left"},
            {"video_id": "b", "prompt": "what digit?", "text": "1"}, {"video_id": "b", "prompt": "what digit?", "text": "one"},
            {"video_id": "b", "prompt": "where to?", "text": "up"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = read_labels(path, label_column="text", several=True)
    assert [(s.prompt, s.references) for s in table.samples["a"]] == [(None, ["the digit 7 moves left", "a seven going left"])]
    assert [(s.prompt, s.references) for s in table.samples["b"]] == [("what digit?", ["1", "one"]), ("where to?", ["up"])]
    with pytest.raises(UsageError, match="more than once"):
        read_labels(path, label_column="text")  # a classifier's labels file has one row per video
    path.write_text(json.dumps({"video_id": "a", "text": "x", "split": "train"}) + "\n"
                    + json.dumps({"video_id": "a", "text": "y", "split": "test"}) + "\n")
    with pytest.raises(UsageError, match="more than one split"):
        read_labels(path, label_column="text", several=True)


def test_caption_scores_are_the_coco_scorers_against_every_reference():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    references = [["the digit 7 moves left", "a seven going to the left"], ["the digit 1 moves up", "a one rising"],
                  ["the digit 3 moves down", "a three falling down"]]
    perfect = caption_metrics(["a seven going to the left", "the digit 1 moves up", "a three falling down"], references)
    assert perfect["bleu4"] == pytest.approx(1.0, abs=1e-6)
    wrong = caption_metrics(["nothing at all here", "green grass grows fast", "cats sleep all day"], references)
    assert wrong["bleu4"] < 1e-6 and wrong["cider"] == pytest.approx(0.0, abs=1e-9)
    mixed = ["The digit 7 moves LEFT.", "a one moves up", "the digit 3 moves"]
    scores = caption_metrics(mixed, references)
    tokens = {i: [" ".join(t.lower().replace(".", "").split())] for i, t in enumerate(mixed)}
    bleu, _ = Bleu(4).compute_score({i: r for i, r in enumerate(references)}, tokens, verbose=0)
    cider, _ = Cider().compute_score({i: r for i, r in enumerate(references)}, tokens)
    assert scores == {"bleu4": pytest.approx(bleu[3]), "cider": pytest.approx(cider)}
    assert exact_match(mixed, references) == pytest.approx(1 / 3)  # "The digit 7 moves LEFT." matches a reference


def test_t5_learns_from_every_caption_and_is_scored_on_all_of_them(digits, tmp_path):
    data, store = digits
    rows = [json.loads(line) for line in data.captions.read_text().splitlines()]
    labels = tmp_path / "captions.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" + json.dumps({"video_id": r["video_id"], "text": "a " + r["text"]}) + "\n"
                              for r in rows))
    model = make_tiny_t5(tmp_path / "t5", [r["text"] for r in rows] + ["a"])
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(labels), "--head", "t5", "--model",
                                 str(model), "--inputs", "p32", "--output", str(tmp_path / "run"), "--epochs", "3", "--lr",
                                 "0.002", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"bleu4", "cider", "exact_match"} <= set(metrics["test"])
    assert len({e["video_id"] for e in metrics["test"]["examples"]}) == 5  # evaluated once per video, not per caption
    result = runner.invoke(app, ["evaluate", str(tmp_path / "run"), "--store", str(store), "--labels", str(labels), "--json"])
    evaluation = json.loads(result.output)
    assert evaluation["bleu4"] == pytest.approx(metrics["test"]["bleu4"]) and evaluation["cider"] == pytest.approx(metrics["test"]["cider"])
    # training saw both captions of every training video: twice the items, from the same videos
    training = json.loads((tmp_path / "run" / "training_config.json").read_text())
    steps = json.loads(next((tmp_path / "run" / "checkpoints").glob("checkpoint-*/trainer_state.json")).read_text())
    per_epoch = -(-2 * training["videos"]["train"] // training["batch_size"])  # ceil(2 x videos / batch)
    assert steps["global_step"] % per_epoch == 0 and steps["global_step"] // per_epoch in (1, 2, 3)


def test_questions_are_answered_and_predicted_one_row_each(digits, tmp_path):
    data, store = digits
    rows = [json.loads(line) for line in data.captions.read_text().splitlines()]
    labels = tmp_path / "qa.jsonl"
    labels.write_text("".join(
        json.dumps({"video_id": r["video_id"], "prompt": "Which digit?", "text": r["text"].split()[2]}) + "\n"
        + json.dumps({"video_id": r["video_id"], "prompt": "Which way?", "text": r["text"].split()[-1]}) + "\n" for r in rows))
    model = make_tiny_llama(tmp_path / "llama", [r["text"] for r in rows] + ["Which digit? way?"])
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(labels), "--head", "llm", "--model", str(model),
                                 "--task", "qa", "--inputs", "p32", "--output", str(tmp_path / "run"), "--epochs", "1",
                                 "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    examples = metrics["test"]["examples"]
    assert examples[0]["video_id"] == examples[1]["video_id"] and {e["prompt"] for e in examples[:2]} == {
        "Which digit? <video>", "Which way? <video>"}  # one item per question
    questions = tmp_path / "questions.csv"
    first = [r["video_id"] for r in rows[:3]]
    questions.write_text("video_id,prompt\n" + "".join(f"{v},Which digit?\n{v},Which way?\n" for v in first))
    result = runner.invoke(app, ["predict", str(tmp_path / "run"), "--store", str(store), "--questions", str(questions),
                                 "-o", str(tmp_path / "p.parquet")])
    assert result.exit_code == 0 and "predicted 3 video(s) (6 rows)" in result.output, result.output
    table = pq.read_table(tmp_path / "p.parquet").to_pylist()
    assert [(r["video_id"], r["prompt"]) for r in table] == [(v, f"{q} <video>") for v in first for q in ("Which digit?", "Which way?")]
