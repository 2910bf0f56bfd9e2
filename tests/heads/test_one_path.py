"""One training path for every head: the CLI and the Python API share their defaults, run folders
load through transformers' Auto classes after `import alex`, and hold nothing that needs unpickling."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from alex.cli import app
from alex.datasets.moving_digits import make_moving_digits
from alex.datasets.tiny_models import make_tiny_llama, make_tiny_t5
from alex.heads import options_class
from alex.heads.training import train
from alex.pipeline.extract import ExtractOptions, extract

README = Path(__file__).resolve().parents[2] / "README.md"
runner = CliRunner()
HEADS = ["probe", "perceiver", "t5", "llm"]
# (class of the model AutoModel must load, of the processor AutoProcessor must load)
AUTO = {"probe": ("AttentiveProbe", None), "perceiver": ("PerceiverHead", None),
        "t5": ("AlexT5ForConditionalGeneration", "AlexT5Processor"), "llm": ("AlexTextModel", "AlexProcessor")}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """24 digit videos of 2 s and 6 of 0.8 s (so batches pad), pixels at 8 px, a split column, and tiny
    T5 / Llama checkpoints."""
    import shutil

    root = tmp_path_factory.mktemp("small")
    data = make_moving_digits(root / "data", num_videos=24, seed=3)
    short = make_moving_digits(root / "short", num_videos=6, frames=8, seed=4)
    shutil.move(str(short.videos), str(data.videos / "short"))
    for item in short.items:
        item.video_id = f"short/{item.video_id}"
    # train 18 + 2 short, validation 3 + 2 short, test 3 + 2 short
    items = data.items[:18] + short.items[:2] + data.items[18:21] + short.items[2:4] + data.items[21:] + short.items[4:]
    assert extract(ExtractOptions(videos=data.videos, store=root / "store", encoders=["px=pixels:8"], fps=2.0,
                                  workers=0)).exit_code == 0
    split = {v.video_id: ("train" if i < 20 else "validation" if i < 25 else "test") for i, v in enumerate(items)}
    data.items = items
    labels = root / "labels.csv"
    labels.write_text("video_id,label,split\n" + "".join(f"{v.video_id},{v.digit},{split[v.video_id]}\n" for v in data.items))
    captions = root / "captions.jsonl"
    captions.write_text("".join(json.dumps({"video_id": v.video_id, "text": v.caption, "split": split[v.video_id]}) + "\n"
                                for v in data.items))
    words = [v.caption for v in data.items] + ["Describe the video."]
    models = {"t5": make_tiny_t5(root / "tiny-t5", words), "llm": make_tiny_llama(root / "tiny-llama", words)}
    return {"root": root, "store": root / "store", "labels": {"probe": labels, "perceiver": labels, "t5": captions,
                                                              "llm": captions}, "models": models}


@pytest.fixture(scope="module")
def runs(small):
    """Each head trained twice with no options but the required ones: once through the CLI, once
    through the Python API. The CLI names the pretrained part with the aliases --t5 and --llm."""
    out = {}
    for head in HEADS:
        cli, api = small["root"] / "cli" / head, small["root"] / "api" / head
        required = {"store": small["store"], "labels": small["labels"][head], "inputs": "px"}
        args = ["train", "--head", head, "--store", small["store"], "--labels", small["labels"][head],
                "--inputs", "px", "--output", cli]
        if head in small["models"]:
            args += [f"--{head}", small["models"][head]]
            required["model"] = str(small["models"][head])
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        train(options_class(head)(output=api, **required))
        out[head] = (cli, api)
    return out


def saved(run: Path, name: str) -> dict:
    data = json.loads((run / name).read_text())
    for key in ("output", "_name_or_path", "best_checkpoint"):
        data.pop(key, None)
    return data


@pytest.mark.parametrize("head", HEADS)
def test_cli_and_api_without_options_save_the_same_configs(runs, head):
    cli, api = runs[head]
    for name in ("config.json", "training_config.json", "generation_config.json", "processor_config.json"):
        if (cli / name).exists() or (api / name).exists():
            assert saved(cli, name) == saved(api, name), name
    training = saved(cli, "training_config.json")
    assert training["head"] == head and training["epochs"] == 30 and training["quiet"] is False


def readme_defaults() -> dict[str, dict[str, str]]:
    """The README's table of training defaults: head -> option -> value as written."""
    _, rest = README.read_text().split("| option | `probe`, `perceiver` |", 1)
    table = ("| option | `probe`, `perceiver` |" + rest).split("\n\n")[0].strip().splitlines()
    columns = [[h.strip(" `") for h in cell.split(",")] for cell in table[0].strip("|").split("|")[1:]]
    out: dict[str, dict[str, str]] = {}
    for row in table[2:]:
        option, *values = (cell.strip(" `") for cell in row.strip("|").split("|"))
        for heads, value in zip(columns, values):
            for head in heads:
                out.setdefault(head, {})[option] = value
    return out


@pytest.mark.parametrize("head", HEADS)
def test_the_readme_defaults_are_what_a_cli_run_saves(runs, head):
    cli, _ = runs[head]
    training, config = saved(cli, "training_config.json"), saved(cli, "config.json")
    stated = readme_defaults()[head]
    assert set(stated) == {"--epochs", "--batch-size", "--lr", "--weight-decay", "--warmup", "--timestamp-encoding"}
    assert training["epochs"] == int(stated["--epochs"]) and training["batch_size"] == int(stated["--batch-size"])
    assert training["learning_rate"] == float(stated["--lr"]) and training["weight_decay"] == float(stated["--weight-decay"])
    assert training["warmup"] == float(stated["--warmup"])
    assert training["timestamp_encoding"] == config["timestamp_encoding"] == stated["--timestamp-encoding"]
    if head in ("t5", "llm"):  # the README's heads table promises Time2Vec for both
        assert config["timestamp_encoding"] == "time2vec"


def test_run_folders_hold_only_files_that_load_without_unpickling(runs):
    allowed = {".json", ".safetensors", ".png"}
    for head in HEADS:
        cli, _ = runs[head]
        for path in cli.rglob("*"):
            relative = path.relative_to(cli)
            if path.is_dir() or relative.parts[0] in ("checkpoints", "tensorboard"):
                continue  # the Trainer's checkpoints (documented) and TensorBoard's event files
            assert path.suffix in allowed, f"{head}: {relative}"
        assert (cli / "model.safetensors").is_file() and not list(cli.glob("*.bin"))


@pytest.mark.slow  # a subprocess per head; the quick subset keeps under 3 minutes
def test_import_alex_lets_the_auto_classes_load_every_run_exactly(runs, tmp_path):
    folders = {head: str(runs[head][0]) for head in HEADS}
    code = f"""
import json, sys
import alex
assert "torch" not in sys.modules and "transformers" not in sys.modules  # import alex stays light
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoProcessor, AutoModelForCausalLM, AutoModelForSeq2SeqLM
folders, expected = {folders!r}, {AUTO!r}
for head, run in folders.items():
    model = AutoModel.from_pretrained(run)
    assert type(model).__name__ == expected[head][0], (head, type(model))
    assert type(AutoConfig.from_pretrained(run)).__name__ == type(model.config).__name__
    weights = load_file(run + "/model.safetensors")
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items()), head
    if expected[head][1]:
        assert type(AutoProcessor.from_pretrained(run)).__name__ == expected[head][1]
assert type(AutoModelForCausalLM.from_pretrained(folders["llm"])).__name__ == "AlexTextModel"
assert type(AutoModelForSeq2SeqLM.from_pretrained(folders["t5"])).__name__ == "AlexT5ForConditionalGeneration"
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
    # transformers first, alex second: the Auto classes still find the heads
    reverse = (f"from transformers import AutoModel\nimport alex\n"
               f"assert type(AutoModel.from_pretrained({folders['probe']!r})).__name__ == 'AttentiveProbe'\n")
    result = subprocess.run([sys.executable, "-c", reverse], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_processors_round_trip_and_generation_settings_come_from_the_run(runs, small, tmp_path):
    import shutil

    from alex.heads.llm import AlexProcessor
    from alex.heads.t5 import AlexT5Processor

    t5_run, llm_run = runs["t5"][0], runs["llm"][0]
    t5 = AlexT5Processor.from_pretrained(t5_run)
    assert t5.max_length == 64 and t5.tokenizer.eos_token == "</s>"
    copy = tmp_path / "t5"
    t5.save_pretrained(copy)
    again = AlexT5Processor.from_pretrained(copy)
    a, b = t5(["caption:", "vqa: what moves"], ["the digit 1 moves up", "up"]), again(["caption:", "vqa: what moves"],
                                                                                       ["the digit 1 moves up", "up"])
    assert all(torch.equal(a[k], b[k]) for k in a) and set(a) == {"input_ids", "attention_mask", "labels"}
    llm = AlexProcessor.from_pretrained(llm_run)
    assert llm.tokens_per_frame == 1 and "<frame>" in llm.tokenizer.get_vocab()
    features = [torch.randn(3, 1, 1024), torch.randn(2, 1, 1024)]
    a = llm(text=["caption: <video>", "caption: <video> the"], video_features=features, timestamps=[[0, 0.5, 1], [0, 0.5]])
    llm.save_pretrained(tmp_path / "llm")
    b = AlexProcessor.from_pretrained(tmp_path / "llm")(text=["caption: <video>", "caption: <video> the"],
                                                        video_features=features, timestamps=[[0, 0.5, 1], [0, 0.5]])
    assert all(torch.equal(a[k], b[k]) for k in a)
    # `alex predict` generates with the run's generation_config.json: cut it to 2 new tokens
    shutil.copytree(t5_run, tmp_path / "short", ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    generation = json.loads((t5_run / "generation_config.json").read_text())
    assert generation["max_new_tokens"] == 32 and generation["do_sample"] is False and generation["eos_token_id"] == 1
    (tmp_path / "short" / "generation_config.json").write_text(json.dumps({**generation, "max_new_tokens": 2}))
    result = runner.invoke(app, ["predict", str(tmp_path / "short"), "--store", str(small["store"]),
                                 "-o", str(tmp_path / "p.parquet")])
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    texts = pq.read_table(tmp_path / "p.parquet").column("text").to_pylist()
    assert len(texts) == 30 and max(len(t.split()) for t in texts) <= 2


def test_outputs_are_transformers_output_classes(runs):
    from transformers.modeling_outputs import CausalLMOutputWithPast, Seq2SeqLMOutput, SequenceClassifierOutput

    from alex.heads import load_head

    probe = load_head(runs["probe"][0])
    features = {"px": torch.randn(2, 3, 192)}
    out = probe(features, {"px": torch.zeros(2, 3)}, {"px": torch.ones(2, 3, dtype=torch.bool)}, labels=torch.tensor([0, 1]))
    assert isinstance(out, SequenceClassifierOutput) and out.loss is not None
    t5 = load_head(runs["t5"][0])
    out = t5(input_ids=torch.tensor([[5, 1]]), features={"px": torch.randn(1, 3, 192)}, timestamps={"px": torch.zeros(1, 3)},
             masks={"px": torch.ones(1, 3, dtype=torch.bool)}, labels=torch.tensor([[6, 1]]))
    assert isinstance(out, Seq2SeqLMOutput) and out.loss is not None
    llm = load_head(runs["llm"][0]).eval()
    ids = torch.tensor([[5, 6, 7]])
    out = llm(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
    lm_out = llm.language_model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
    assert isinstance(out, CausalLMOutputWithPast)
    assert set(lm_out.keys()) <= set(out.keys())  # the LM's own fields, under transformers' current names
    torch.testing.assert_close(out.logits, lm_out.logits)


def test_options_of_other_heads_and_bad_values_are_refused_before_training(small, tmp_path):
    base = ["train", "--store", str(small["store"]), "--labels", str(small["labels"]["probe"]), "--inputs", "px",
            "--output", str(tmp_path / "r")]
    for extra, words in [(["--lm", "lora"], "--lm does not apply to --head probe (an option of --head llm)"),
                         (["--head", "t5"], "--head t5 needs --model"),
                         (["--head", "llm", "--model", "x", "--task", "vqa"], "--task vqa for --head llm"),
                         (["--head", "nosuch"], "unknown head 'nosuch'"),
                         (["--split-fractions", "0.5,0.5"], "three non-negative fractions"),
                         (["--timestamp-encoding", "rope"], "--timestamp-encoding rope: choose one of"),
                         (["--set", "novalue"], "expected key=value")]:
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2 and words in result.output, (extra, result.output)
    assert not (tmp_path / "r").exists()


def test_batch_size_applies_to_evaluate_and_predict(runs, small, tmp_path):
    import pyarrow.parquet as pq

    run = runs["perceiver"][0]
    scores = []
    for batch in ("1", "5"):
        result = runner.invoke(app, ["evaluate", str(run), "--store", str(small["store"]), "--labels",
                                     str(small["labels"]["perceiver"]), "--batch-size", batch, "--json"])
        assert result.exit_code == 0, result.output
        scores.append(json.loads(result.output))
        result = runner.invoke(app, ["predict", str(run), "--store", str(small["store"]), "-o",
                                     str(tmp_path / f"{batch}.parquet"), "--batch-size", batch])
        assert result.exit_code == 0, result.output
    assert scores[0]["accuracy"] == scores[1]["accuracy"] and scores[0]["videos"] == 5
    one, five = (pq.read_table(tmp_path / f"{b}.parquet").to_pydict() for b in ("1", "5"))
    assert one["label"] == five["label"]
    torch.testing.assert_close(torch.tensor(one["probabilities"]), torch.tensor(five["probabilities"]), rtol=0, atol=1e-5)
    refused = runner.invoke(app, ["predict", str(run), "--store", str(small["store"]), "-o", str(tmp_path / "x.parquet"),
                                  "--batch-size", "0"])
    assert refused.exit_code == 2 and "--batch-size 0" in refused.output
    prompt = runner.invoke(app, ["predict", str(run), "--store", str(small["store"]), "-o", str(tmp_path / "x.parquet"),
                                 "--prompt", "what digit"])
    assert prompt.exit_code == 2 and "takes no prompt" in prompt.output


def test_help_shows_every_heads_options_with_their_defaults():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "320"})
    assert result.exit_code == 0
    text = re.sub(r"\s+", " ", result.output)
    for words in ("--model,--t5,--llm", "--lm ", "--hidden-size", "(--head llm)",
                  "(default: probe, perceiver: 32; t5, llm: 16; perceiver-mm: 2)", "(default: probe, perceiver: sinusoidal; t5, llm: time2vec)"):
        assert words in text, words


def test_exit_codes_of_the_training_commands(small, runs, tmp_path, monkeypatch):
    """0 done; 2 bad usage or input (nothing written); 3 an internal error, with its traceback printed
    and kept in the run folder. (1, some videos failed, is extraction's: tests/test_cli.py.)"""
    import alex.heads.training

    run = tmp_path / "crash"
    args = ["train", "--store", str(small["store"]), "--labels", str(small["labels"]["probe"]), "--inputs", "px",
            "--output", str(run), "--epochs", "1"]
    assert runner.invoke(app, ["evaluate", str(runs["probe"][0]), "--store", str(small["store"]), "--labels",
                               str(small["labels"]["probe"])]).exit_code == 0
    missing = runner.invoke(app, ["evaluate", str(tmp_path / "nothing"), "--store", str(small["store"]), "--labels",
                                  str(small["labels"]["probe"])])
    assert missing.exit_code == 2 and "is not a finished run" in missing.output

    def broken(*args, **kwargs):
        raise RuntimeError("a bug inside alex")

    monkeypatch.setattr(alex.heads.training, "fit", broken)
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "Traceback" in result.output and "RuntimeError: a bug inside alex" in result.output and "internal error" in result.output
    log = (run / "alex-errors.log").read_text()
    assert "RuntimeError: a bug inside alex" in log and "alex.heads.training" not in log.splitlines()[0]
    monkeypatch.setattr(alex.heads.training, "head_device", broken)
    result = runner.invoke(app, ["predict", str(runs["probe"][0]), "--store", str(small["store"]), "-o", str(tmp_path / "p.parquet")])
    assert result.exit_code == 3 and "RuntimeError: a bug inside alex" in (runs["probe"][0] / "alex-errors.log").read_text()


TOY_HEAD = {
    "__init__.py": '''
from alex.lazy import lazy_exports

_EXPORTS = {"MeanConfig": ".configuration_mean", "MeanClassifier": ".modeling_mean", "MeanOptions": ".options"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
''',
    "options.py": '''
from dataclasses import dataclass
from typing import ClassVar

from alex.heads.options import ClassifierOptions, option


@dataclass(kw_only=True)
class MeanOptions(ClassifierOptions):
    head: ClassVar[str] = "mean"
    center: bool = option(True, help="Subtract the mean token before pooling.")


OPTIONS = MeanOptions
''',
    "configuration_mean.py": '''
from alex.heads.auto import register_config
from alex.heads.configuration_classification import ClassificationHeadConfig


class MeanConfig(ClassificationHeadConfig):
    model_type = "alex_mean"

    def __init__(self, center: bool = True, **kwargs):
        self.center = center
        super().__init__(**kwargs)


register_config(MeanConfig)
''',
    "modeling_mean.py": '''
from torch import nn

from alex.heads.auto import register_model
from alex.heads.modeling_classification import ClassificationHead
from toy_mean.configuration_mean import MeanConfig


class MeanClassifier(ClassificationHead):
    config_class = MeanConfig

    def __init__(self, config):
        super().__init__(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def classify(self, tokens, mask):
        keep = mask[..., None].float()  # (B, N, 1)
        pooled = (tokens * keep).sum(1) / keep.sum(1).clamp(min=1)  # (B, W)
        return self.classifier(pooled)


register_model(MeanClassifier)
''',
    "head.py": '''
from alex.heads.classifier import ClassifierFamily
from toy_mean.options import MeanOptions


class MeanFamily(ClassifierFamily):
    name = "mean"
    options_class = MeanOptions
    model_types = ("alex_mean",)

    def classes(self):
        from toy_mean.configuration_mean import MeanConfig
        from toy_mean.modeling_mean import MeanClassifier

        return MeanConfig, MeanClassifier

    def build(self, options, *args):
        model, processor = super().build(options, *args)
        model.config.center = options.center
        return model, processor


HEAD = MeanFamily()
''',
}


@pytest.mark.slow
def test_a_fifth_head_is_one_folder_and_one_registry_entry(small, tmp_path):
    """A new head family trains, evaluates and predicts through the unchanged CLI and training path."""
    package = tmp_path / "toy_mean"
    package.mkdir()
    for name, text in TOY_HEAD.items():
        (package / name).write_text(text.lstrip())
    run = tmp_path / "runs" / "mean"

    def alex(*args: str) -> subprocess.CompletedProcess:
        code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
                "from alex.heads.registry import HEADS; HEADS['mean'] = 'toy_mean'  # the one registry entry\n"
                f"from alex.cli import main; sys.argv = ['alex', *{list(args)!r}]; main()\n")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              env={**__import__("os").environ, "COLUMNS": "200"})

    store, labels = str(small["store"]), str(small["labels"]["probe"])
    help_text = alex("train", "--help").stdout
    assert "--center" in help_text and "--no-center" in help_text and "(--head mean)" in help_text
    result = alex("train", "--head", "mean", "--no-center", "--store", store, "--labels", labels, "--inputs", "px",
                  "--output", str(run), "--epochs", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test: accuracy" in result.stdout
    assert json.loads((run / "training_config.json").read_text())["center"] is False
    assert json.loads((run / "config.json").read_text())["model_type"] == "alex_mean"
    result = alex("evaluate", str(run), "--store", store, "--labels", labels, "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["videos"] == 5, result.stderr[-3000:]
    result = alex("predict", str(run), "--store", store, "-o", str(tmp_path / "p.parquet"))
    assert result.returncode == 0 and "predicted 30 video(s)" in result.stdout, result.stderr[-3000:]


@pytest.mark.parametrize("head", ["t5", "llm"])
def test_generative_predictions_do_not_depend_on_the_batch_size(runs, small, tmp_path, head):
    import pyarrow.parquet as pq

    tables = []
    for batch in ("1", "16"):
        result = runner.invoke(app, ["predict", str(runs[head][0]), "--store", str(small["store"]), "-o",
                                     str(tmp_path / f"{batch}.parquet"), "--batch-size", batch])
        assert result.exit_code == 0, result.output
        tables.append(pq.read_table(tmp_path / f"{batch}.parquet").to_pydict())
    assert tables[0] == tables[1] and len(tables[0]["text"]) == 30
