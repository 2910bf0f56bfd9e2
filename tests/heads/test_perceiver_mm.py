"""The perceiver-mm head: the published multimodal Perceiver fine-tuned as seeds/002 describes,
checked against the spec's numbers (shared/specs/multimodal-perceiver.md), invariances, and the CLI."""

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import torch
from transformers import PerceiverConfig, PerceiverForMultimodalAutoencoding
from typer.testing import CliRunner

from alex.cli import app
from alex.datasets.audio_visual import make_audio_visual
from alex.heads.perceiver_mm.head import load_base
from alex.heads.perceiver_mm.modeling_perceiver_mm import PerceiverMMForVideoClassification, from_base
from alex.heads.perceiver_mm.options import PerceiverMMOptions
from alex.pipeline.extract import ExtractOptions, extract

EMOTIONS = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]  # CREMA-D's six


def published_model():
    """transformers' class with the published configuration (random weights: no download here)."""
    config = PerceiverConfig(d_model=704, num_latents=784, d_latents=512, num_labels=700, num_frames=16,
                             audio_samples_per_frame=1920, samples_per_patch=16, image_size=224,
                             output_shape=[1, 16, 224, 224], output_num_channels=512, num_blocks=1,
                             num_self_attends_per_block=8, num_self_attention_heads=8, num_cross_attention_heads=1)
    torch.manual_seed(0)
    return PerceiverForMultimodalAutoencoding(config)


def test_published_model_fine_tuned_to_six_emotions_keeps_704_channels_and_every_other_weight():
    base = published_model()
    assert sum(p.numel() for p in base.parameters()) == pytest.approx(19.9e6, rel=0.01)  # the spec's "about 19.9M"
    model = from_base(base, EMOTIONS)
    preprocessor = model.perceiver.input_preprocessor
    assert preprocessor.num_channels == 704 and preprocessor.min_padding_size == 303  # audio (401) is now the widest
    assert {m: tuple(p.shape) for m, p in preprocessor.padding.items()} == {"audio": (1, 303), "image": (1, 461), "label": (1, 698)}
    assert model.config.num_labels == 6 and model.config.id2label[5] == "SAD" and model.config.label2id["ANG"] == 0
    classifier = model.perceiver.output_postprocessor.modalities["label"].classifier
    assert [type(m).__name__ for m in classifier] == ["Linear", "Dropout", "Linear"]
    assert (classifier[0].in_features, classifier[0].out_features, classifier[1].p, classifier[2].out_features) == (512, 256, 0.3, 6)
    query = model.perceiver.decoder.modalities["label"].decoder.output_position_encodings.position_embeddings
    assert tuple(query.shape) == (1, 1024)  # the label query does not depend on the label count
    ours, theirs = model.state_dict(), base.state_dict()
    replaced = {k for k in theirs if k not in ours or ours[k].shape != theirs[k].shape}
    assert replaced == {"perceiver.input_preprocessor.padding.label",
                        "perceiver.output_postprocessor.modalities.label.classifier.weight",
                        "perceiver.output_postprocessor.modalities.label.classifier.bias"}
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs if k not in replaced)


def tiny_head(labels=("a", "b", "c")):
    return from_base(load_base("tiny@random"), list(labels)).eval()


def clips(count, seed):
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (count, 4, 32, 32, 3), generator=generator, dtype=torch.uint8)
    audio = 0.3 * torch.randn(count, 7680, generator=generator)
    return image, audio


def test_only_the_label_is_decoded_and_decoding_more_points_changes_nothing():
    model = tiny_head()
    image, audio = clips(2, 0)
    queries = []
    original = model.perceiver.decoder.decoder_query

    def counting(*args, **kwargs):
        query = original(*args, **kwargs)
        queries.append(query.shape[1])
        return query

    model.perceiver.decoder.decoder_query = counting
    with torch.no_grad():
        label = model.clip_logits(image, audio)
    assert queries == [1]  # one query: the label's; no image or audio reconstruction
    pixels = image.permute(0, 1, 4, 2, 3).float() / 255
    inputs = {"image": pixels, "audio": audio[..., None], "label": torch.zeros(2, 3)}
    points = {"image": torch.arange(500), "audio": torch.arange(100), "label": None}
    with torch.no_grad():
        reference = PerceiverForMultimodalAutoencoding.forward(model, inputs=inputs, subsampled_output_points=points).logits
    assert reference["image"].shape == (2, 500, 3)
    torch.testing.assert_close(label, reference["label"], atol=1e-5, rtol=1e-5)


def test_clips_average_alone_or_in_a_padded_batch():
    model = tiny_head()
    image, audio = clips(3, 1)
    with torch.no_grad():
        each = torch.stack([model.clip_logits(image[i : i + 1], audio[i : i + 1])[0] for i in range(3)]).softmax(-1)  # (3, C)
        two = model(image=image[None, :2], audio=audio[None, :2]).logits[0]
        padded = torch.zeros(2, 3, 4, 32, 32, 3, dtype=torch.uint8)
        padded_audio = torch.zeros(2, 3, 7680)
        padded[0, :2], padded_audio[0, :2] = image[:2], audio[:2]
        padded[1], padded_audio[1] = image, audio
        mask = torch.tensor([[True, True, False], [True, True, True]])
        batch = model(image=padded, audio=padded_audio, clip_mask=mask).logits
    torch.testing.assert_close(two.exp(), each[:2].mean(0), atol=1e-5, rtol=1e-4)  # the mean of the clips' probabilities
    torch.testing.assert_close(batch[0], two, atol=1e-5, rtol=1e-4)  # padding clips changes nothing
    torch.testing.assert_close(batch[1].exp(), each.mean(0), atol=1e-5, rtol=1e-4)
    labels = torch.tensor([1, 2])
    loss = model(image=padded, audio=padded_audio, clip_mask=mask, labels=labels).loss
    per_clip = -torch.log(torch.stack([each[0, 1], each[1, 1]])).mean(), -torch.log(each[:, 2]).mean()
    torch.testing.assert_close(loss, (per_clip[0] + per_clip[1]) / 2, atol=1e-5, rtol=1e-4)


def test_save_and_from_pretrained_round_trip_exactly(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

    model = tiny_head(EMOTIONS)
    model.save_pretrained(tmp_path / "run")
    assert AutoConfig.from_pretrained(tmp_path / "run").model_type == "alex_perceiver_mm"
    for auto in (AutoModel, AutoModelForVideoClassification):
        loaded = auto.from_pretrained(tmp_path / "run").eval()
        assert isinstance(loaded, PerceiverMMForVideoClassification)
        theirs = loaded.state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in model.state_dict().items())
    image, audio = clips(2, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image=image[:, None], audio=audio[:, None]).logits,
                                   model(image=image[:, None], audio=audio[:, None]).logits)


def test_the_readme_defaults_are_the_options_defaults():
    from tests.heads.test_one_path import readme_defaults

    stated = readme_defaults()["perceiver-mm"]
    options = PerceiverMMOptions(store="s", labels="l", output="o", model="tiny@random")
    assert (options.batch_size, options.epochs, options.inputs) == (2, 10, ["perceiver-mm"])  # the seed's batch and epochs
    assert (options.epochs, options.batch_size) == (int(stated["--epochs"]), int(stated["--batch-size"]))
    assert (options.learning_rate, options.weight_decay, options.warmup) == (
        float(stated["--lr"]), float(stated["--weight-decay"]), float(stated["--warmup"]))
    result = CliRunner().invoke(app, ["train", "--head", "perceiver-mm", "--help"])
    assert result.exit_code == 0 and "--model" in result.output and "--eval-clips" in result.output


@pytest.fixture(scope="module")
def av_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("av")
    data = make_audio_visual(root, num_videos=18, seed=3)
    extract(ExtractOptions(videos=data.videos, store=root / "store", encoders=["perceiver-mm:tiny@random", "pixels"],
                           workers=0, audio_dir=data.audio_dir))
    return root, data


@pytest.mark.slow
def test_train_evaluate_predict_through_the_cli(av_store, tmp_path):
    root, data = av_store
    run = tmp_path / "run"
    train = subprocess.run([sys.executable, "-m", "alex", "train", "--head", "perceiver-mm", "--model", "tiny@random",
                            "--store", str(root / "store"), "--labels", str(data.labels_colour), "-o", str(run),
                            "--epochs", "1", "-q"], capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    saved = json.loads((run / "training_config.json").read_text())
    defaults = PerceiverMMOptions(store="s", labels="l", output="o", model="tiny@random")
    assert saved["head"] == "perceiver-mm" and saved["model"] == "tiny@random"
    assert (saved["batch_size"], saved["learning_rate"]) == (defaults.batch_size, defaults.learning_rate)  # CLI = API
    metrics = json.loads((run / "metrics.json").read_text())
    evaluated = CliRunner().invoke(app, ["evaluate", str(run), "--store", str(root / "store"), "--labels",
                                         str(data.labels_colour), "--batch-size", "5"])
    assert evaluated.exit_code == 0, evaluated.output
    assert f"accuracy {metrics['test']['accuracy']:.4f}" in evaluated.output  # batch 5 scores what batch 2 did
    out = tmp_path / "predictions.parquet"
    predicted = CliRunner().invoke(app, ["predict", str(run), "--store", str(root / "store"), "-o", str(out)])
    assert predicted.exit_code == 0, predicted.output
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == len(data.items) and {r["label"] for r in rows} <= {"red", "green", "blue"}
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-4 for r in rows)


def test_inputs_must_be_the_models_clips(av_store, tmp_path):
    root, data = av_store
    result = CliRunner().invoke(app, ["train", "--head", "perceiver-mm", "--model", "tiny@random", "--store",
                                      str(root / "store"), "--labels", str(data.labels_colour), "-o", str(tmp_path / "r"),
                                      "--inputs", "pixels"])
    assert result.exit_code == 2 and "perceiver-mm encoder" in result.output


def test_a_hub_model_offline_fails_fast(av_store, tmp_path, monkeypatch):
    from alex.hub import hub_reachable

    root, data = av_store
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    hub_reachable.cache_clear()
    result = CliRunner().invoke(app, ["train", "--head", "perceiver-mm", "--model", "deepmind/multimodal-perceiver",
                                      "--store", str(root / "store"), "--labels", str(data.labels_colour),
                                      "-o", str(tmp_path / "r")])
    hub_reachable.cache_clear()
    assert result.exit_code == 2, result.output
    assert "deepmind/multimodal-perceiver/config.json" in result.output
    assert not (tmp_path / "r" / "training_config.json").exists()


@pytest.mark.slow
def test_both_modalities_reach_the_classifier(tmp_path):
    """The learning check of benchmarks/perceiver_mm_learning.py: one class only seen (colour), one
    only heard (a buzzer's duty cycle); trained through the CLI with its defaults, each clearly
    above chance (1/3) on the held-out test split."""
    data = make_audio_visual(tmp_path / "av", num_videos=90, seed=1, sound="buzz")
    extract(ExtractOptions(videos=data.videos, store=tmp_path / "store", encoders=["perceiver-mm:tiny@random"],
                           workers=0, audio_dir=data.audio_dir))
    accuracy = {}
    for task, labels in (("colour", data.labels_colour), ("buzz", data.labels_tone)):
        run = tmp_path / task
        result = subprocess.run([sys.executable, "-m", "alex", "train", "--head", "perceiver-mm", "--model", "tiny@random",
                                 "--store", str(tmp_path / "store"), "--labels", str(labels), "-o", str(run), "-q"],
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr
        accuracy[task] = json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
    assert accuracy["colour"] >= 0.75 and accuracy["buzz"] >= 0.75, accuracy  # chance: 0.33
