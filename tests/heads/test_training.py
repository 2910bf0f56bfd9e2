import json
import shutil
import subprocess
import sys

import duckdb
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import alex
from alex.cli import app
from alex.errors import UsageError
from alex.heads import load_head, options_class
from alex.heads.training import evaluate, predict, train


def options(digits, output, head="probe", **kwargs):
    data, store = digits
    base = dict(store=store, labels=data.labels, output=output, inputs=["p32"], epochs=30, device="cpu", hidden_size=64)
    base.update(kwargs)
    return options_class(head)(**base)


@pytest.fixture(scope="module")
def probe_run(digits, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "probe"
    metrics = train(options(digits, run))
    return run, metrics


def test_probe_on_pixels_learns_digits_on_held_out_videos(probe_run):
    run, metrics = probe_run
    assert metrics["test"]["accuracy"] >= 0.5  # 10 classes: chance is 0.1
    assert metrics["videos"]["test"] >= 30
    # the run folder holds everything a user and `alex predict` need
    for name in ["config.json", "model.safetensors", "training_config.json", "metrics.json",
                 "training_curve.png", "confusion_matrix.png"]:
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run / "checkpoints").glob("checkpoint-*"))
    assert json.loads((run / "metrics.json").read_text())["test"] == metrics["test"]
    config = json.loads((run / "config.json").read_text())
    assert config["model_type"] == "alex_probe" and config["inputs"] == ["p32"]
    assert config["id2label"]["7"] == "7"


def test_from_pretrained_restores_the_trained_head_exactly(probe_run):
    run, _ = probe_run
    head = load_head(run)
    saved = load_file(run / "model.safetensors")
    for key, value in head.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_evaluate_and_predict_work_from_the_run_folder_alone(probe_run, digits, tmp_path):
    run, metrics = probe_run
    data, store = digits
    assert evaluate(run, store, data.labels, device="cpu")["accuracy"] == metrics["test"]["accuracy"]
    result = predict(run, store, tmp_path / "preds.parquet", device="cpu")
    assert result["videos"] == 300
    with alex.open_store(store) as s:
        videos = s.sql("SELECT video_id, duration FROM videos").arrow()
    con = duckdb.connect()
    con.register("videos", videos)
    joined = con.sql(
        f"SELECT count(*), avg(p.score) FROM read_parquet('{tmp_path / 'preds.parquet'}') p JOIN videos v USING (video_id)"
    ).fetchall()[0]
    assert joined[0] == 300 and 0.1 < joined[1] <= 1.0
    labels = dict(con.sql(f"SELECT video_id, label::VARCHAR FROM read_csv('{data.labels}')").fetchall())
    predicted = dict(con.sql(f"SELECT video_id, label FROM read_parquet('{tmp_path / 'preds.parquet'}')").fetchall())
    assert sum(predicted[v] == labels[v] for v in labels) / len(labels) > 0.5


def test_training_is_reproducible_on_cpu(digits, tmp_path):
    a = train(options(digits, tmp_path / "a", epochs=2, head="perceiver", inputs=["p32", "clip"]))
    b = train(options(digits, tmp_path / "b", epochs=2, head="perceiver", inputs=["p32", "clip"]))
    assert a["validation"] == b["validation"] and a["test"] == b["test"]
    wa, wb = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    head = load_head(tmp_path / "a")
    assert head.config.model_type == "alex_perceiver" and head.config.label2id == {str(i): i for i in range(10)}


def test_resume_continues_from_the_last_checkpoint(digits, tmp_path):
    first = train(options(digits, tmp_path / "r", epochs=2, patience=100))
    assert first["epochs"] == 2
    with pytest.raises(UsageError, match="already holds a run"):
        train(options(digits, tmp_path / "r", epochs=4))
    resumed = train(options(digits, tmp_path / "r", epochs=4, patience=100, resume=True))
    assert resumed["epochs"] == 4
    last = max((tmp_path / "r" / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    # Epochs 1-2 are the first run's (its cosine schedule had decayed by epoch 2); a fresh 4-epoch
    # run would have been mid-schedule there.
    before_2 = [e["learning_rate"] for e in history if "learning_rate" in e and e["epoch"] < 2.0]
    assert before_2 and before_2[-1] < 2e-4
    assert max(e["epoch"] for e in history) == 4.0
    with pytest.raises(UsageError, match="no checkpoint"):
        train(options(digits, tmp_path / "fresh", resume=True))


def test_resume_refuses_other_options_unless_told(digits, tmp_path, monkeypatch):
    """A resume with other --inputs replaced a good probe with a wrong one, exit 0 (issue 13)."""
    data, store = digits
    run = tmp_path / "r"
    base = ["--labels", data.labels, "-o", run, "--inputs", "p32", "--hidden-size", "64", "--device", "cpu", "-q"]
    invoke = lambda *extra, store=store: CliRunner().invoke(app, [str(a) for a in ["train", "--store", store, *base, *extra]])  # noqa: E731
    assert invoke("--epochs", "1").exit_code == 0
    before = (run / "model.safetensors").read_bytes()
    refused = invoke("--epochs", "1", "--resume", "--inputs", "clip", "--lr", "0.01", "--allow-config-change")
    assert refused.exit_code == 2, refused.output
    assert "--inputs p32 (now clip) (defines the model)" in refused.output  # never, even when allowed
    assert "--lr 0.001 (now 0.01) (the checkpoint's optimizer restores it)" in refused.output
    asked = invoke("--epochs", "1", "--resume", "--batch-size", "16", "--seed", "3")
    assert asked.exit_code == 2 and "--batch-size 32 (now 16); --seed 0 (now 3)" in asked.output, asked.output
    assert "--allow-config-change" in asked.output
    wider = invoke("--epochs", "2", "--resume", "--allow-config-change", "--hidden-size", "32")
    assert wider.exit_code == 2 and "hold another model than these options build: hidden_size 64 (now 32)" in wider.output, wider.output
    assert (run / "model.safetensors").read_bytes() == before  # nothing touched
    # What only says how long or where to run may change; the same store spelled another way is the same store.
    monkeypatch.chdir(store.parent)
    assert invoke("--epochs", "2", "--resume", "--patience", "9", "--workers", "0", store=f"./{store.name}/").exit_code == 0
    allowed = invoke("--epochs", "3", "--resume", "--batch-size", "16", "--allow-config-change")
    assert allowed.exit_code == 0, allowed.output
    assert "changed options: --batch-size 32 (now 16)" in allowed.output
    saved = json.loads((run / "training_config.json").read_text())
    assert saved["batch_size"] == 16 and saved["epochs"] == 3
    assert invoke("--epochs", "4", "--resume", "--batch-size", "16").exit_code == 0  # the run holds batch 16 now
    # A new run into the folder of an unfinished one would mix their checkpoints.
    (tmp_path / "unfinished").mkdir()
    shutil.copytree(run / "checkpoints", tmp_path / "unfinished" / "checkpoints")
    fresh = CliRunner().invoke(app, [str(a) for a in ["train", "--store", store, *base[:2], "-o", tmp_path / "unfinished",
                                                      "--inputs", "clip", "-q"]])
    assert fresh.exit_code == 2 and "holds the checkpoints of an unfinished run" in fresh.output


def test_early_stopping_on_the_validation_metric(digits, tmp_path):
    metrics = train(options(digits, tmp_path / "e", epochs=30, learning_rate=0.0, patience=2))
    assert metrics["epochs"] == 3  # nothing improves after the first epoch: stop after 2 more


def test_bad_labels_stop_before_training(digits, tmp_path):
    data, _ = digits
    bad = tmp_path / "bad.csv"
    bad.write_text(data.labels.read_text() + "not_in_store.mp4,3,left\n")
    with pytest.raises(UsageError, match="bad.csv names 1 video"):
        train(options(digits, tmp_path / "run", labels=bad))
    with pytest.raises(UsageError, match="has no encoder 'audio'"):
        train(options(digits, tmp_path / "run", inputs=["audio"]))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cli_train_evaluate_predict(digits, tmp_path):
    data, store = digits
    runner = CliRunner()
    run = tmp_path / "cli"
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(data.labels), "--head", "perceiver",
                                 "--inputs", "p32,clip", "--output", str(run), "--epochs", "1", "--device", "cpu",
                                 "--set", "num_latents=8", "-q"])
    assert result.exit_code == 0, result.output
    assert "test: accuracy" in result.output and "skipped: 0 status error" in result.output
    assert json.loads((run / "config.json").read_text())["num_latents"] == 8
    result = runner.invoke(app, ["evaluate", str(run), "--store", str(store), "--labels", str(data.labels), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["videos"] == json.loads((run / "metrics.json").read_text())["videos"]["test"]
    result = runner.invoke(app, ["predict", str(run), "--store", str(store), "--output", str(tmp_path / "p.parquet")])
    assert result.exit_code == 0 and "predicted 300 video(s)" in result.output
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(data.labels), "--output", str(tmp_path / "x"),
                                 "--split-fractions", "0.5,0.5"])
    assert result.exit_code == 2
    # A misspelt --set key is refused by name (configs take **kwargs: it used to be kept and change nothing).
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(data.labels), "--head", "perceiver",
                                 "--inputs", "p32", "--output", str(tmp_path / "y"), "--device", "cpu",
                                 "--set", "num_latent=8"])
    assert result.exit_code == 2 and "config has no 'num_latent'" in result.output and "num_latents" in result.output
    assert not (tmp_path / "y" / "checkpoints").exists()


def test_heads_never_import_the_pipeline():
    code = (
        "import sys, alex.heads.training, alex.heads.probe.head, alex.heads.perceiver.head, alex.heads.t5.head, "
        "alex.heads.llm.head, alex.store.dataset; from alex.heads.auto import register_auto_classes; register_auto_classes();"
        "bad = [m for m in sys.modules if m.startswith('alex.pipeline')]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
