"""The Time2Vec-fused LLM head (seeds/000): AlexProcessor, AlexTextModel, AlexForAction."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import GPT2Config, LlamaConfig, Qwen2Config
from typer.testing import CliRunner

import alex
from alex.cli import app
from alex.heads import load_head
from alex.datasets.tiny_models import make_tiny_llama, word_tokenizer
from alex.heads.labels import align_actions
from alex.heads.llm import AlexForAction, AlexProcessor, AlexTextModel, LLMOptions
from alex.heads.training import train

WORDS = "caption: the digit 0 1 2 3 4 5 6 7 8 9 moves left right up down Describe video."


@pytest.fixture(scope="module")
def processor():
    return AlexProcessor(word_tokenizer([WORDS]), tokens_per_frame=2)


def lm_config(kind: str, vocab: int):
    common = dict(vocab_size=vocab, pad_token_id=0, bos_token_id=1, eos_token_id=1)
    if kind == "llama":
        return LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=256, **common)
    if kind == "qwen2":
        return Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=256, **common)
    return GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, **common)


def model_for(processor, kind="llama", action_dim=2, cls=AlexForAction, **kwargs):
    config = cls.config_class(lm_config=lm_config(kind, len(processor.tokenizer)).to_dict(), inputs=["clip"], input_dim=4,
                            tokens_per_frame=processor.tokens_per_frame, frame_token_id=processor.frame_token_id,
                            action_dim=action_dim, **kwargs)
    torch.manual_seed(0)
    return cls(config).eval()


def features(frames=3, seed=0):
    return np.random.default_rng(seed).standard_normal((frames, 2, 4)).astype(np.float32)


def test_processor_returns_the_seed_keys_with_bool_masks(processor):
    out = processor(text=["caption: <video> the digit"], video_features=[features(3)], timestamps=[[0.0, 0.5, 1.25]],
                    actions=[np.ones((3, 2))], targets=["moves left"])
    seed_keys = {"input_ids", "timestamp", "video_frame_mask", "action_target_mask", "text_target_mask", "actions"}
    assert seed_keys <= set(out) and set(out) - seed_keys == {"attention_mask", "video_features", "frame_mask", "labels"}
    for key in ("video_frame_mask", "action_target_mask", "text_target_mask"):
        assert out[key].dtype == torch.bool
    ids, frame = out["input_ids"][0], out["video_frame_mask"][0]
    # positions: 0 "caption:", 1-6 two placeholders for each of 3 frames, 7 "the", 8 "digit", 9 "moves", 10 "left", 11 </s>
    assert ids[frame].tolist() == [processor.frame_token_id] * 6 and frame.nonzero().flatten().tolist() == [1, 2, 3, 4, 5, 6]
    assert torch.nonzero(out["action_target_mask"][0]).flatten().tolist() == [2, 4, 6]  # the last of each frame
    assert out["timestamp"][0][frame].tolist() == [0.0, 0.0, 0.5, 0.5, 1.25, 1.25]
    # the loss is on the answer "moves left" and its EOS only, not on the prompt nor on "the digit"
    assert torch.nonzero(out["text_target_mask"][0]).flatten().tolist() == [8, 9, 10]
    assert out["labels"][0].tolist() == [-100] * 9 + ids[9:12].tolist()
    assert ids[11] == processor.tokenizer.eos_token_id
    assert processor.tokenizer.decode(ids[9:11]) == "moves left"
    decoded = processor.tokenizer.decode(ids[~frame], skip_special_tokens=True)
    assert decoded == "caption: the digit moves left"


def test_text_only_frames_only_and_text_then_frames(processor):
    text_only = processor(text=["the digit"])
    assert not text_only["video_frame_mask"].any() and "video_features" not in text_only
    frames_only = processor(video_features=[features(3)])  # no timestamps: pseudo times at 1 fps
    assert frames_only["timestamp"][0].tolist() == [0, 0, 1, 1, 2, 2]
    after = processor(text=["caption:"], video_features=[features(2)])  # no placeholder: text, then frames
    assert after["video_frame_mask"][0].tolist() == [False, True, True, True, True]


def test_batches_pad_right_for_training_and_left_for_generation(processor):
    batch = [features(3), features(1)]
    right = processor(text=["caption:", "caption:"], video_features=batch, targets=["the digit 7", "up"])
    left = processor(text=["caption:", "caption:"], video_features=batch, padding_side="left")
    assert right["attention_mask"][1].tolist() == [1] * 5 + [0] * 6  # caption:, 2 frame tokens, up, eos
    assert left["attention_mask"][1].tolist() == [0] * 4 + [1] * 3
    assert right["frame_mask"].tolist() == [[True, True, True], [True, False, False]]
    assert left["input_ids"][1, -1] == processor.frame_token_id  # generation continues right after the frames


@pytest.mark.parametrize("kind", ["llama", "qwen2", "gpt2"])
@pytest.mark.parametrize("projector", ["linear", "mlp2x_gelu"])
def test_features_replace_placeholders_in_any_causal_lm(processor, kind, projector):
    model = model_for(processor, kind, projector_type=projector, timestamp_encoding="none")
    batch = processor(text=["caption: <video> the"], video_features=[features(3)], targets=["digit"])
    embeds = model.embed(batch["input_ids"], batch["video_frame_mask"], batch["timestamp"], batch["video_features"])
    expected = model.projector(batch["video_features"][0].reshape(6, 4))  # (frames * k, H), in order
    torch.testing.assert_close(embeds[0][batch["video_frame_mask"][0]], expected)
    text = ~batch["video_frame_mask"][0]
    torch.testing.assert_close(embeds[0][text], model.language_model.get_input_embeddings()(batch["input_ids"][0][text]))
    out = model(**batch)
    assert out.loss is not None and torch.isfinite(out.loss)


@pytest.mark.parametrize("encoding", ["time2vec", "sinusoidal", "none"])
def test_timestamp_encoding_is_added_to_frame_tokens_only(processor, encoding):
    model = model_for(processor, timestamp_encoding=encoding)
    batch = processor(text=["caption: <video> the"], video_features=[features(3)], timestamps=[[0.0, 1.0, 2.0]])
    later = dict(batch, timestamp=batch["timestamp"] + 5.0)
    a = model.embed(batch["input_ids"], batch["video_frame_mask"], batch["timestamp"], batch["video_features"])
    b = model.embed(later["input_ids"], later["video_frame_mask"], later["timestamp"], later["video_features"])
    frame = batch["video_frame_mask"][0]
    assert torch.equal(a[0][~frame], b[0][~frame])
    assert torch.equal(a[0][frame], b[0][frame]) == (encoding == "none")


def test_action_head_reads_each_frames_last_placeholder_and_weights_the_losses(processor):
    model = model_for(processor, lm_loss_weight=0.5, action_loss_weight=2.0)
    batch = processor(text=["caption:", "caption:"], video_features=[features(3), features(2, 1)],
                      actions=[np.ones((3, 2)), np.zeros((2, 2))], targets=["the digit 7", "up"])
    out = model(**batch)
    assert out.action_predictions.shape == (5, 2)  # one per real frame
    expected = torch.nn.functional.mse_loss(out.action_predictions, torch.tensor([[1.0, 1]] * 3 + [[0.0, 0]] * 2))
    torch.testing.assert_close(out.action_loss, expected)
    torch.testing.assert_close(out.loss, 0.5 * out.lm_loss + 2.0 * out.action_loss)


@pytest.mark.parametrize("cls", [AlexTextModel, AlexForAction])
def test_round_trip_is_exact(processor, tmp_path, cls):
    model = model_for(processor, cls=cls, action_dim=2 if cls is AlexForAction else 0)
    model.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path).eval()
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    batch = processor(text=["caption:"], video_features=[features(3)], timestamps=[[0.0, 0.3, 0.9]])
    assert torch.equal(model(**batch).logits, loaded(**batch).logits)


def test_cached_and_uncached_decoding_give_the_same_tokens(processor):
    model = model_for(processor, cls=AlexTextModel, action_dim=0)
    batch = processor(text=["caption:", "caption: the"], video_features=[features(3), features(2, 1)], padding_side="left")
    kwargs = dict(max_new_tokens=8, pad_token_id=0, eos_token_id=None)
    assert torch.equal(model.generate(**batch, use_cache=True, **kwargs), model.generate(**batch, use_cache=False, **kwargs))


def test_actions_align_with_the_sampling_rule():
    times, values = np.array([0.0, 0.1, 0.2, 0.3]), np.array([[0.0], [1.0], [2.0], [3.0]])
    assert align_actions(np.array([0.0, 0.15, 0.3, 9.0]), times, values).ravel().tolist() == [0.0, 1.0, 3.0, 3.0]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return make_tiny_llama(tmp_path_factory.mktemp("llm") / "tiny-llama", [WORDS])


def test_raw_frames_give_the_outputs_of_their_cached_features(tiny_llama, tmp_path):
    from alex.frames import attach_image_encoder
    from alex.pipeline.extract import ExtractOptions, extract
    from alex.pipeline.sampling import Sampling
    from alex.pipeline.workers import DecodeTask, decode_task
    from tests.fixtures.videos import make_video

    video = make_video(tmp_path / "v" / "a.mp4", num_frames=30, fps=10, noise=True)
    extract(ExtractOptions(videos=tmp_path / "v", store=tmp_path / "s", encoders=["clip:tiny@random"], store_dtype="float32", workers=0))
    tokenizer = word_tokenizer([WORDS])
    processor = AlexProcessor(tokenizer)
    with alex.open_store(tmp_path / "s") as store:  # the head records the encoder and the precision it computed in
        precision = store.encoders["clip"]["compute_dtype"]
    config = AlexForAction.config_class(lm_config=lm_config("llama", len(tokenizer)).to_dict(), inputs=["clip"], input_dim=32,
                            frame_token_id=processor.frame_token_id, action_dim=2, image_encoder="clip:tiny@random",
                            image_encoder_dtype=precision)
    torch.manual_seed(0)
    model = AlexForAction(config).eval()
    encoder = attach_image_encoder(model)
    assert "image_encoder" not in dict(model.named_children()) and not any(k.startswith("image_encoder") for k in model.state_dict())
    steps = [m[3] for m in decode_task(DecodeTask(0, str(video), {"clip": encoder.steps}, Sampling(fps=1.0))) if m[0] == "steps"]
    frames = torch.from_numpy(np.concatenate([s.data for s in steps]))  # (T, h, w, 3) preprocessed uint8
    with alex.open_store(tmp_path / "s") as store:
        cached = store.arrays("a.mp4", "clip")
    from_features = processor(text=["caption:"], video_features=[cached.embedding], timestamps=[cached.t_start])
    from_frames = processor(text=["caption:"], video_frames=[frames], timestamps=[cached.t_start])
    a, b = model(**from_features), model(**from_frames)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.action_predictions, b.action_predictions, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # a learning check: in the full suite, not the quick subset
def test_llm_learns_captions_and_actions_on_digits(tiny_llama, digits, tmp_path):
    data, store = digits
    captions = train(LLMOptions(store=store, labels=data.captions, output=tmp_path / "cap", model=str(tiny_llama),
                                         task="caption", inputs=["p32"], lm="full", epochs=30, learning_rate=2e-3, device="cpu"))
    assert captions["test"]["exact_match"] >= 0.5
    actions = train(LLMOptions(store=store, labels=data.actions, output=tmp_path / "act", model=str(tiny_llama),
                                        task="action", inputs=["p32"], lm="full", epochs=20, learning_rate=2e-3, device="cpu"))
    assert actions["test"]["action_mse_after_first_frame"] < 0.5 * actions["test"]["action_mse_of_mean"]


def test_cli_llm_with_lora_then_evaluate_and_predict(tiny_llama, digits, tmp_path):
    data, store = digits
    runner = CliRunner()
    run = tmp_path / "lora"
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(data.captions), "--head", "llm", "--llm",
                                 str(tiny_llama), "--task", "caption", "--lm", "lora", "--inputs", "p32", "--output", str(run),
                                 "--epochs", "1", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["model_type"] == "alex_llm" and config["lm_mode"] == "lora" and not config["merged"]
    assert (run / "adapter" / "adapter_config.json").is_file() and (run / "adapter" / "adapter_model.safetensors").is_file()
    saved = load_file(run / "model.safetensors")
    assert {k for k in saved if k.startswith("language_model.")} and all("lora_" in k for k in saved if k.startswith("language_model."))
    loaded = load_head(run)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in saved.items())
    merged = tmp_path / "merged"
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(data.captions), "--head", "llm", "--llm",
                                 str(tiny_llama), "--lm", "lora", "--merge", "--inputs", "p32", "--output", str(merged),
                                 "--epochs", "1", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((merged / "config.json").read_text())["merged"] and not (merged / "adapter").exists()
    whole = load_file(merged / "model.safetensors")
    assert "language_model.model.embed_tokens.weight" in whole and not any("lora_" in k for k in whole)
    result = runner.invoke(app, ["evaluate", str(run), "--store", str(store), "--labels", str(data.captions), "--json"])
    assert result.exit_code == 0 and "exact_match" in json.loads(result.output)
    result = runner.invoke(app, ["predict", str(run), "--store", str(store), "-o", str(tmp_path / "p.parquet")])
    assert result.exit_code == 0 and "predicted 300 video(s)" in result.output
    result = runner.invoke(app, ["train", "--store", str(store), "--labels", str(data.captions), "--head", "llm",
                                 "--output", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--model" in result.output


def test_qa_with_a_frozen_lm_trains_only_the_video_side(tiny_llama, digits, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    data, store = digits
    labels = tmp_path / "qa.jsonl"
    rows = [json.loads(line) for line in data.captions.read_text().splitlines()]
    labels.write_text("".join(json.dumps({"video_id": r["video_id"], "prompt": "Describe the video.",
                                          "text": r["text"].split()[-1]}) + "\n" for r in rows))
    metrics = train(LLMOptions(store=store, labels=labels, output=tmp_path / "qa", model=str(tiny_llama),
                                        task="qa", inputs=["p32"], lm="frozen", epochs=2, device="cpu"))
    assert "exact_match" in metrics["test"]
    assert all(e["reference"] in ("left", "right", "up", "down") for e in metrics["test"]["examples"])
    trained = load_file(tmp_path / "qa" / "model.safetensors")
    # the run keeps what it trained, not the LM: the base model is named in its config
    assert not any(k.startswith("language_model.") for k in trained)
    assert any(k.startswith("projector.") for k in trained) and any(k.startswith("time_embedding.") for k in trained)
    config = json.loads((tmp_path / "qa" / "config.json").read_text())
    assert config["lm_mode"] == "frozen" and config["base_model"] == str(tiny_llama.resolve())
    loaded = load_head(tmp_path / "qa")
    base = AutoModelForCausalLM.from_pretrained(tiny_llama).state_dict()
    state = loaded.state_dict()
    for key, value in base.items():  # the LM is exactly the checkpoint it started from
        assert torch.equal(state[f"language_model.{key}"], value), key
    for key, value in trained.items():  # and the head exactly as trained
        assert torch.equal(state[key], value), key


def test_the_lm_loss_is_cross_entropy_on_the_answer_tokens_only(processor):
    model = model_for(processor, cls=AlexTextModel, action_dim=0)
    batch = processor(text=["caption: <video> the digit"], video_features=[features(3)], targets=["moves left"])
    out = model(**batch)
    # positions 8, 9, 10 ("digit", "moves", "left") predict the tokens at 9, 10, 11 ("moves", "left", </s>)
    by_hand = torch.nn.functional.cross_entropy(out.logits[0, [8, 9, 10]], batch["input_ids"][0, [9, 10, 11]])
    torch.testing.assert_close(out.lm_loss, by_hand)
    other_prompt = processor(text=["Describe the video. <video> the digit"], video_features=[features(3)], targets=["moves left"])
    assert (other_prompt["labels"] != -100).sum() == 3  # a longer prompt adds no loss term


@pytest.mark.parametrize("kind", ["llama", "qwen2", "gpt2"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_a_video_gives_the_same_outputs_alone_and_in_any_batch(processor, kind, side):
    """Logits, actions and greedy generations of one video do not depend on its batch neighbours
    (longer and shorter, so it is padded and pads others) nor on the padding side."""
    model = model_for(processor, kind, action_dim=2)
    texts = ["caption: <video> the digit", "<video>", "Describe the video. caption: the digit 7 moves <video> left up"]
    clips = [features(3, 0), features(1, 1), features(5, 2)]
    times = [[0.0, 0.5, 1.0], [0.0], [0.0, 0.2, 0.4, 0.6, 0.8]]
    alone = processor(text=texts[:1], video_features=clips[:1], timestamps=times[:1], padding_side=side)
    batch = processor(text=texts, video_features=clips, timestamps=times, padding_side=side)
    with torch.no_grad():
        a, b = model(**alone), model(**batch)
    real = batch["attention_mask"][0].bool()
    torch.testing.assert_close(b.logits[0][real], a.logits[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.action_predictions[:3], a.action_predictions, rtol=1e-5, atol=1e-5)  # video 0's 3 frames
    if side == "left":  # generation continues after the last real token
        kwargs = dict(max_new_tokens=6, eos_token_id=None, pad_token_id=0)
        assert model.generate(**alone, **kwargs)[0].tolist() == model.generate(**batch, **kwargs)[0].tolist()


def test_the_lm_is_built_once_in_the_dtype_asked_for(tiny_llama, digits, tmp_path):
    data, store = digits
    train(LLMOptions(store=store, labels=data.actions, output=tmp_path / "bf16", model=str(tiny_llama), task="action",
                     inputs=["p32"], epochs=1, device="cpu", dtype="bf16"))
    config = json.loads((tmp_path / "bf16" / "config.json").read_text())
    assert config["lm_dtype"] == "bf16" and config["lm_mode"] == "frozen"
    head = load_head(tmp_path / "bf16")
    assert {p.dtype for p in head.language_model.parameters()} == {torch.bfloat16}
    assert {p.dtype for n, p in head.named_parameters() if not n.startswith("language_model.")} == {torch.float32}
    auto = LLMOptions(store=store, labels=data.actions, output=tmp_path / "x", model=str(tiny_llama))
    from alex.heads.llm.head import lm_dtype

    assert auto.dtype == "auto" and lm_dtype("auto", "cpu") == "fp32"


@pytest.fixture(scope="module")
def tiny_tied(tmp_path_factory):
    """A Qwen2 with tied input and output embeddings, as Qwen2.5-0.5B has."""
    from transformers import Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("qwen2") / "tiny-qwen2"
    tokenizer = word_tokenizer([WORDS], extra_tokens=["<video>", "<frame>"])
    config = lm_config("qwen2", len(tokenizer))
    config.tie_word_embeddings = True
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("lm, dtype", [("frozen", "fp32"), ("lora", "fp32"), ("full", "bf16")])
def test_runs_over_a_tied_embedding_lm_load_back_exactly(tiny_tied, digits, tmp_path, lm, dtype):
    from transformers import AutoModelForCausalLM

    data, store = digits
    run = tmp_path / lm
    train(LLMOptions(store=store, labels=data.actions, output=run, model=str(tiny_tied), task="action", inputs=["p32"],
                     lm=lm, dtype=dtype, epochs=1, device="cpu"))
    saved = load_file(run / "model.safetensors")
    state = load_head(run).state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items())  # fp32 head weights stay fp32, exactly
    assert saved["projector.0.weight"].dtype == torch.float32
    if lm == "frozen":
        base = AutoModelForCausalLM.from_pretrained(tiny_tied).state_dict()
        assert all(torch.equal(state[f"language_model.{k}"], v) for k, v in base.items())


@pytest.mark.parametrize("projector, layout", [("mlp2x_gelu", "bin"), ("linear", "sharded")])
def test_projector_weights_load_from_a_video_llava_checkpoint(processor, tmp_path, projector, layout):
    """LLaVA keeps its projector as model.mm_projector.* inside the LM checkpoint (or alone in mm_projector.bin)."""
    import json as _json

    from safetensors.torch import save_file

    from alex.errors import UsageError
    from alex.heads.llm.video_llava import load_projector_weights

    model = model_for(processor, projector_type=projector, action_dim=0, cls=AlexTextModel)
    g = torch.Generator().manual_seed(1)
    weights = {f"model.mm_projector.{k}": torch.randn(v.shape, generator=g) for k, v in model.projector.state_dict().items()}
    if layout == "bin":
        path = tmp_path / "mm_projector.bin"
        torch.save(weights, path)
    else:  # a sharded LLaVA checkpoint folder, the projector in the second shard
        path = tmp_path / "video-llava"
        path.mkdir()
        save_file({"model.embed_tokens.weight": torch.zeros(4, 4)}, path / "model-00001-of-00002.safetensors")
        save_file(weights, path / "model-00002-of-00002.safetensors")
        weight_map = {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                      **{k: "model-00002-of-00002.safetensors" for k in weights}}
        (path / "model.safetensors.index.json").write_text(_json.dumps({"weight_map": weight_map}))
    load_projector_weights(model.projector, path)
    for key, value in model.projector.state_dict().items():
        assert torch.equal(value, weights[f"model.mm_projector.{key}"]), key
    other = model_for(processor, projector_type="linear" if projector == "mlp2x_gelu" else "mlp2x_gelu", action_dim=0,
                      cls=AlexTextModel)
    with pytest.raises(UsageError, match="choose the matching --projector"):
        load_projector_weights(other.projector, path)


def test_prompts_follow_the_chat_template_or_llava_v1_and_the_loss_stays_on_the_answer():
    from alex.heads.llm.head import chat_format
    from alex.heads.llm.video_llava import LLAVA_V1_SYSTEM

    tokenizer = word_tokenizer([WORDS, LLAVA_V1_SYSTEM, "USER: ASSISTANT: <|user|> <|assistant|>"],
                               extra_tokens=["<video>", "<frame>"])
    assert chat_format("auto", tokenizer) == "plain"
    tokenizer.chat_template = ("{% for m in messages %}<|user|> {{ m['content'] }} {% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    assert chat_format("auto", tokenizer) == "template"
    for fmt, prompt_words in [("template", "<|user|> caption: <|assistant|>"),
                              ("llava_v1", f"{LLAVA_V1_SYSTEM} USER: caption: ASSISTANT:")]:
        proc = AlexProcessor(tokenizer, chat_format=fmt)
        out = proc(text=["caption: <video>"], video_features=[features(2)], targets=["the digit 7"])
        ids, frame = out["input_ids"][0], out["video_frame_mask"][0]
        assert tokenizer.decode(ids[~frame], skip_special_tokens=True) == f"{prompt_words} the digit 7"
        answer = out["labels"][0][out["labels"][0] != -100]
        assert tokenizer.decode(answer, skip_special_tokens=True) == "the digit 7" and answer[-1] == tokenizer.eos_token_id
        generation = proc(text=["caption:"], video_features=[features(2)], padding_side="left")
        assert generation["video_frame_mask"][0].sum() == 2  # frames at the end of the user's turn, before the answer
        assert tokenizer.decode(generation["input_ids"][0][~generation["video_frame_mask"][0]]) == prompt_words


def test_alex_train_starts_the_projector_from_projector_weights(tiny_llama, digits, tmp_path):
    data, store = digits
    g = torch.Generator().manual_seed(2)
    weights = {"model.mm_projector.0.weight": torch.randn(64, 3072, generator=g), "model.mm_projector.0.bias": torch.randn(64, generator=g),
               "model.mm_projector.2.weight": torch.randn(64, 64, generator=g), "model.mm_projector.2.bias": torch.randn(64, generator=g)}
    torch.save(weights, tmp_path / "mm_projector.bin")
    result = CliRunner().invoke(app, ["train", "--store", str(store), "--labels", str(data.captions), "--head", "llm",
                                      "--model", str(tiny_llama), "--inputs", "p32", "--output", str(tmp_path / "run"),
                                      "--projector-weights", str(tmp_path / "mm_projector.bin"), "--epochs", "1", "--lr", "0",
                                      "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    saved = load_file(tmp_path / "run" / "model.safetensors")
    for key, value in weights.items():  # learning rate 0: the projector is exactly the checkpoint's
        assert torch.equal(saved["projector." + key.split("mm_projector.")[1]], value), key
    wrong = CliRunner().invoke(app, ["train", "--store", str(store), "--labels", str(data.captions), "--head", "llm",
                                     "--model", str(tiny_llama), "--inputs", "p32", "--output", str(tmp_path / "bad"),
                                     "--projector", "linear", "--projector-weights", str(tmp_path / "mm_projector.bin")])
    assert wrong.exit_code == 2 and "--projector" in wrong.output
