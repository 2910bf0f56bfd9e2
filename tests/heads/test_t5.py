"""VL-T5 head (Cho et al. 2021): joint encoder over text then video, T5 generates."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM
from typer.testing import CliRunner

from alex.cli import app
from alex.datasets.tiny_models import make_tiny_bart, make_tiny_t5, word_tokenizer
from alex.heads import load_head
from alex.heads.t5 import AlexT5Config, AlexT5ForConditionalGeneration, AlexT5Processor, T5Collator, T5Options
from alex.heads.t5.processing_t5 import span_corrupt
from alex.heads.time_encoding import Time2Vec
from alex.heads.training import train


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory, digits):
    data, _ = digits
    captions = [json.loads(line)["text"] for line in data.captions.read_text().splitlines()]
    return make_tiny_t5(tmp_path_factory.mktemp("t5") / "tiny-t5", captions + [str(d) for d in range(10)])


@pytest.fixture(scope="module")
def tiny_bart(tmp_path_factory, digits):
    data, _ = digits
    captions = [json.loads(line)["text"] for line in data.captions.read_text().splitlines()]
    return make_tiny_bart(tmp_path_factory.mktemp("bart") / "tiny-bart", captions + [str(d) for d in range(10)])


@pytest.fixture(params=["t5", "bart"])
def checkpoint(request, tiny_t5, tiny_bart):
    """VL-T5 and VL-BART: the same head over either backbone."""
    return {"t5": tiny_t5, "bart": tiny_bart}[request.param]


def head(tiny_t5, **kwargs):
    base = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5).eval()
    config = AlexT5Config(seq2seq_config=base.config.to_dict(), inputs=["clip"], input_dims=[16], **kwargs)
    torch.manual_seed(0)
    model = AlexT5ForConditionalGeneration(config).eval()
    model.language_model.load_state_dict(base.state_dict())
    return model, base


def video(B=2, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ({"clip": torch.randn(B, T, 16, generator=g)}, {"clip": torch.arange(T).float().expand(B, T) * 0.5},
            {"clip": torch.ones(B, T, dtype=torch.bool)})


def test_without_visual_tokens_logits_equal_t5_or_bart(checkpoint):
    model, base = head(checkpoint)
    ids = torch.tensor([[20, 21, 22, 1], [23, 24, 1, 0]])
    mask = (ids != 0).long()
    labels = torch.tensor([[25, 26, 1], [27, 1, -100]])
    with torch.no_grad():
        ours = model(input_ids=ids, attention_mask=mask, labels=labels)
        theirs = base(input_ids=ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(ours.logits, theirs.logits, rtol=0, atol=0)
    torch.testing.assert_close(ours.loss, theirs.loss)


def test_joint_encoder_reads_text_then_video_under_one_mask(tiny_t5):
    model, _ = head(tiny_t5)
    ids, mask = torch.tensor([[20, 21, 1], [22, 1, 0]]), torch.tensor([[1, 1, 1], [1, 1, 0]])
    features, timestamps, masks = video()
    embeds, joint = model.joint_inputs(ids, mask, features, timestamps, masks)
    assert embeds.shape == (2, 3 + 5, 64) and joint.tolist() == [[1, 1, 1] + [1] * 5, [1, 1, 0] + [1] * 5]
    torch.testing.assert_close(embeds[:, :3], model.language_model.shared(ids))  # text first, as T5 embeds it
    labels = torch.tensor([[25, 1], [26, 1]])
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask, features=features, timestamps=timestamps, masks=masks, labels=labels).logits
        padded = model(
            input_ids=ids, attention_mask=mask, labels=labels,
            features={"clip": torch.cat([features["clip"], torch.randn(2, 2, 16)], 1)},
            timestamps={"clip": torch.cat([timestamps["clip"], torch.full((2, 2), 9.0)], 1)},
            masks={"clip": torch.cat([masks["clip"], torch.zeros(2, 2, dtype=torch.bool)], 1)},
        ).logits
        shuffled = model(input_ids=ids, attention_mask=mask, labels=labels, timestamps=timestamps, masks=masks,
                         features={"clip": features["clip"].flip(1)}).logits
    torch.testing.assert_close(plain, padded, rtol=1e-5, atol=1e-5)  # padded steps are invisible
    assert not torch.allclose(plain, shuffled)  # order and time matter
    visual = model.visual
    assert isinstance(visual.feat_embedding["clip"][0], torch.nn.Linear) and isinstance(visual.feat_embedding["clip"][1], torch.nn.LayerNorm)
    assert isinstance(visual.time_embedding, Time2Vec) and visual.order_embedding.num_embeddings == 1024


def test_round_trip_is_exact(tiny_t5, tmp_path):
    model, _ = head(tiny_t5)
    model.save_pretrained(tmp_path)
    loaded = AlexT5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    features, timestamps, masks = video(B=1)
    ids = torch.tensor([[20, 21, 1]])
    a = model.generate(input_ids=ids, features=features, timestamps=timestamps, masks=masks, max_new_tokens=6)
    b = loaded.generate(input_ids=ids, features=features, timestamps=timestamps, masks=masks, max_new_tokens=6)
    assert torch.equal(a, b)


def test_span_corruption_hides_15_percent_in_sentinel_spans():
    rng = np.random.default_rng(0)
    sentinels = list(range(1000, 1020))
    ids = list(range(1, 101))
    inputs, targets = span_corrupt(ids, sentinels, rng)
    hidden = [t for t in targets if t not in sentinels]
    assert len(hidden) == 15  # 15% noise
    used = [t for t in targets if t in sentinels]
    assert used == sentinels[: len(used)] and len(used) == 5  # mean span 3: 15 / 3 spans
    assert [t for t in inputs if t in sentinels] == used
    # filling each sentinel of the input with the target's span gives the text back
    spans, current = {}, None
    for t in targets:
        if t in sentinels:
            current = t
            spans[t] = []
        else:
            spans[current].append(t)
    restored = [x for t in inputs for x in (spans[t] if t in sentinels else [t])]
    assert restored == ids


def test_collator_prefixes_tokenises_and_masks_padding(tiny_t5):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5)
    processor = AlexT5Processor(tokenizer)
    features, timestamps, _ = video(B=2, T=3)
    items = [{"features": {"clip": features["clip"][b]}, "timestamps": {"clip": timestamps["clip"][b]},
              "prompt": "caption:", "target": text} for b, text in enumerate(["the digit 7 moves left", "the digit 1 moves up"])]
    batch = T5Collator(processor)(items)
    assert tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True) == "caption:"
    assert tokenizer.decode(batch["labels"][1][batch["labels"][1] >= 0], skip_special_tokens=True) == "the digit 1 moves up"
    span = T5Collator(processor, span=True)(items)
    assert any("<extra_id_0>" in tokenizer.decode(row) for row in span["input_ids"])


@pytest.mark.slow  # a learning check: in the full suite, not the quick subset
def test_caption_learning_check_and_run_folder(tiny_t5, digits, tmp_path):
    data, store = digits
    metrics = train(T5Options(store=store, labels=data.captions, output=tmp_path / "cap", model=str(tiny_t5),
                              inputs=["p32"], epochs=30, learning_rate=2e-3, device="cpu"))
    assert metrics["test"]["exact_match"] >= 0.5  # "the digit 7 moves left": digit and direction both right
    run = tmp_path / "cap"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "training_config.json", "metrics.json", "training_curve.png"):
        assert (run / name).is_file(), name
    assert isinstance(load_head(run), AlexT5ForConditionalGeneration)
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", str(run), "--store", str(store), "--labels", str(data.captions), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["exact_match"] == metrics["test"]["exact_match"]
    result = runner.invoke(app, ["predict", str(run), "--store", str(store), "-o", str(tmp_path / "p.parquet")])
    assert result.exit_code == 0 and "predicted 300 video(s)" in result.output


def test_span_pretraining_then_classify_by_label_word(tiny_t5, digits, tmp_path):
    data, store = digits
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(data.captions), "--head", "t5", "--t5",
                                 str(tiny_t5), "--task", "span", "--inputs", "p32", "--output", str(tmp_path / "span"),
                                 "--epochs", "2", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(data.labels), "--head", "t5", "--t5",
                                 str(tmp_path / "span"), "--task", "classify", "--inputs", "p32", "--output",
                                 str(tmp_path / "cls"), "--epochs", "2", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "cls" / "metrics.json").read_text())
    assert all(example["generated"].split()[0] in [str(d) for d in range(10)] for example in metrics["test"]["examples"])
    assert json.loads((tmp_path / "cls" / "config.json").read_text())["task"] == "classify"
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(data.labels), "--head", "t5",
                                 "--output", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--model" in result.output


def test_word_tokenizer_has_t5_conventions():
    tokenizer = word_tokenizer(["a b c"])
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert tokenizer("a b")["input_ids"][-1] == 1 and "<extra_id_0>" in tokenizer.get_vocab()


@pytest.mark.parametrize("append_eos", [True, False])
def test_targets_end_in_exactly_one_eos_whatever_the_tokenizer(append_eos):
    from alex.heads.llm import AlexProcessor

    tokenizer = word_tokenizer(["the digit 7 moves left caption:"], append_eos=append_eos)
    assert (tokenizer("the digit")["input_ids"][-1] == 1) == append_eos  # with and without a post-processor
    batch = AlexT5Processor(tokenizer)(["caption:", "caption: the"], ["the digit 7", "left"])
    assert batch["labels"].tolist() == [[tokenizer.convert_tokens_to_ids(w) for w in "the digit 7".split()] + [1],
                                        [tokenizer.convert_tokens_to_ids("left"), 1, -100, -100]]
    assert batch["input_ids"][0].tolist()[:2] == [tokenizer.convert_tokens_to_ids("caption:"), 1]
    llm = AlexProcessor(word_tokenizer(["the digit 7 caption:"], append_eos=append_eos))
    out = llm(text=["caption:"], targets=["the digit 7"])
    assert out["input_ids"][0].tolist()[-1] == 1 and out["input_ids"][0].tolist().count(1) == 1


@pytest.mark.slow  # a subprocess per head; the quick subset keeps under 3 minutes
def test_a_t5_whose_tokenizer_adds_no_eos_still_learns_to_stop(digits, tmp_path):
    data, store = digits
    captions = [json.loads(line)["text"] for line in data.captions.read_text().splitlines()]
    model = make_tiny_t5(tmp_path / "t5", captions, append_eos=False)
    metrics = train(T5Options(store=store, labels=data.captions, output=tmp_path / "cap", model=str(model),
                              inputs=["p32"], epochs=30, learning_rate=2e-3, device="cpu"))
    assert metrics["test"]["exact_match"] >= 0.5
    assert all(len(e["generated"].split()) == 5 for e in metrics["test"]["examples"])  # "the digit N moves DIRECTION"


def test_relative_position_bias_is_between_text_tokens_only(tiny_t5):
    model, _ = head(tiny_t5)
    attention = model.language_model.encoder.block[0].layer[0].SelfAttention
    plain = type(attention).compute_bias(attention, 3, 3)  # (1, H, 3, 3): T5's own bias for 3 text tokens
    model._text_length = 3
    joint = attention.compute_bias(3 + 5, 3 + 5)
    model._text_length = None
    assert joint.shape == (1, plain.shape[1], 8, 8)
    torch.testing.assert_close(joint[:, :, :3, :3], plain)
    assert joint[:, :, 3:].abs().sum() == 0 and joint[:, :, :, 3:].abs().sum() == 0


def test_a_video_gives_the_same_logits_and_text_alone_and_in_any_batch(checkpoint):
    """Neighbours with longer and shorter prompts and videos pad this one's prompt and video (VL-T5:
    relative bias between text tokens only; VL-BART: absolute positions for text tokens only)."""
    model, _ = head(checkpoint)
    processor = AlexT5Processor(word_tokenizer(["caption: vqa: what moves where the digit 7 left up"]))
    prompts = ["vqa: what moves", "caption:", "vqa: what moves where the digit 7 left up"]
    lengths = [4, 6, 2]
    g = torch.Generator().manual_seed(0)
    clips = [torch.randn(n, 16, generator=g) for n in lengths]

    def batch(rows):
        text = processor([prompts[r] for r in rows], ["the digit 7"] * len(rows))
        longest = max(lengths[r] for r in rows)
        features = torch.zeros(len(rows), longest, 16)
        masks = torch.zeros(len(rows), longest, dtype=torch.bool)
        for i, r in enumerate(rows):
            features[i, : lengths[r]], masks[i, : lengths[r]] = clips[r], True
        times = torch.arange(longest).float().expand(len(rows), longest) * 0.5
        return dict(text, features={"clip": features}, timestamps={"clip": times}, masks={"clip": masks})

    alone, together = batch([0]), batch([0, 1, 2])
    with torch.no_grad():
        a, b = model(**alone).logits, model(**together).logits
    torch.testing.assert_close(b[0], a[0], rtol=1e-5, atol=1e-5)
    generate = dict(max_new_tokens=5, eos_token_id=None)
    without_labels = {k: v for k, v in alone.items() if k != "labels"}
    assert model.generate(**without_labels, **generate)[0].tolist() == \
        model.generate(**{k: v for k, v in together.items() if k != "labels"}, **generate)[0].tolist()


@pytest.mark.slow  # a learning check: in the full suite, not the quick subset
def test_vl_bart_learns_captions_through_alex_train(tiny_bart, digits, tmp_path):
    data, store = digits
    result = CliRunner().invoke(app, ["train", "--store", str(store), "--labels", str(data.captions), "--head", "t5",
                                      "--model", str(tiny_bart), "--inputs", "p32", "--output", str(tmp_path / "bart"),
                                      "--lr", "0.002", "--epochs", "60", "--device", "cpu", "-q"])  # a random BART learns slower
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "bart" / "metrics.json").read_text())
    assert metrics["test"]["exact_match"] >= 0.5
    model = load_head(tmp_path / "bart")
    assert type(model.language_model).__name__ == "BartForConditionalGeneration"
    assert json.loads((tmp_path / "bart" / "config.json").read_text())["seq2seq_config"]["model_type"] == "bart"


def test_long_captions_and_questions_are_never_cut_short(tiny_t5, digits, tmp_path):
    """Prompts and captions were truncated to 64 tokens, silently."""
    from alex.hub import load_tokenizer
    from alex.heads.t5.processing_t5 import MAX_TEXT_TOKENS, fit_to_texts

    data, store = digits
    words = "the digit 7 moves left".split()
    long = " ".join(words * 30)  # 150 words, each one token of the tiny word tokenizer
    processor = AlexT5Processor(load_tokenizer(str(tiny_t5)))
    assert processor.max_length == 64 and len(processor.ids(long)) == 64  # what it did before
    assert fit_to_texts(processor, ["caption:", long]) == 151 and processor.max_length == 151
    assert processor.ids(long)[:-1] == processor.tokenizer(long, add_special_tokens=False)["input_ids"]  # whole
    with pytest.raises(Exception, match=f"longer than the {MAX_TEXT_TOKENS}"):
        fit_to_texts(processor, [" ".join(words * 120)])
    # Through training: the run's processor keeps the length its labels need, for evaluate and predict too.
    rows = [json.loads(line) for line in data.captions.read_text().splitlines()]
    rows[0]["text"] = long
    captions = tmp_path / "captions.jsonl"
    captions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train(T5Options(store=store, labels=captions, output=tmp_path / "run", model=str(tiny_t5), inputs=["p32"], epochs=1,
                    device="cpu", quiet=True))
    assert AlexT5Processor.from_pretrained(str(tmp_path / "run")).max_length == 151
