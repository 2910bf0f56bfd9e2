import pytest
import torch

from alex.heads.perceiver import PerceiverHead, PerceiverHeadConfig
from alex.heads.probe import AttentiveProbe, ProbeConfig
from alex.heads.time_encoding import SinusoidalTime, Time2Vec

LABELS = {i: f"class{i}" for i in range(5)}


def batch(B=3, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    features = {"clip": torch.randn(B, T, 16, generator=g), "audio": torch.randn(B, T - 2, 8, generator=g)}
    timestamps = {"clip": torch.arange(T).float().expand(B, T) * 0.5, "audio": torch.arange(T - 2).float().expand(B, T - 2)}
    masks = {name: torch.ones(f.shape[:2], dtype=torch.bool) for name, f in features.items()}
    return features, timestamps, masks


def build(kind, **kwargs):
    common = dict(inputs=["clip", "audio"], input_dims=[16, 8], hidden_size=32, id2label=LABELS, **kwargs)
    return (AttentiveProbe(ProbeConfig(**common)) if kind == "probe" else PerceiverHead(PerceiverHeadConfig(d_latents=32, **common))).eval()


@pytest.mark.parametrize("kind", ["probe", "perceiver"])
@pytest.mark.parametrize("encoding", ["sinusoidal", "time2vec"])
def test_round_trip_restores_exact_parameters_and_outputs(tmp_path, kind, encoding):
    torch.manual_seed(0)
    model = build(kind, timestamp_encoding=encoding)
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    assert model.state_dict().keys() == loaded.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    with torch.no_grad():
        assert torch.equal(model(*batch()).logits, loaded(*batch()).logits)
    assert loaded.config.id2label[3] == "class3" and loaded.config.label2id["class3"] == 3
    assert loaded.config.inputs == ["clip", "audio"] and loaded.config.timestamp_encoding == encoding


@pytest.mark.parametrize("kind", ["probe", "perceiver"])
def test_padding_is_invisible(kind):
    torch.manual_seed(0)
    model = build(kind)
    features, timestamps, masks = batch()
    padded = (
        {k: torch.cat([v, torch.randn(v.shape[0], 3, v.shape[2])], 1) for k, v in features.items()},
        {k: torch.cat([v, torch.full((v.shape[0], 3), 99.0)], 1) for k, v in timestamps.items()},
        {k: torch.cat([v, torch.zeros(v.shape[0], 3, dtype=torch.bool)], 1) for k, v in masks.items()},
    )
    with torch.no_grad():
        torch.testing.assert_close(model(features, timestamps, masks).logits, model(*padded).logits)


@pytest.mark.parametrize("kind", ["probe", "perceiver"])
def test_order_matters_only_through_the_time_encoding(kind):
    features, timestamps, masks = batch()
    shuffled = {k: v.flip(1) for k, v in features.items()}
    for encoding, should_differ in [("sinusoidal", True), ("none", False)]:
        torch.manual_seed(0)
        model = build(kind, timestamp_encoding=encoding)
        with torch.no_grad():
            a, b = model(features, timestamps, masks).logits, model(shuffled, timestamps, masks).logits
        assert (not torch.allclose(a, b, atol=1e-5)) == should_differ, encoding


def test_probe_is_learnable_queries_and_one_cross_attention_block():
    model = build("probe", num_queries=2)
    assert model.query_tokens.shape == (1, 2, 32) and model.query_tokens.requires_grad
    assert len(model.blocks) == 0 and model.classifier.out_features == 5
    features, timestamps, masks = batch()
    out = model(features, timestamps, masks, labels=torch.tensor([0, 1, 4]))
    assert out.logits.shape == (3, 5) and out.loss.ndim == 0
    out.loss.backward()
    assert model.query_tokens.grad.abs().sum() > 0


def test_perceiver_uses_transformers_perceiver_with_its_classification_decoder():
    from transformers.models.perceiver.modeling_perceiver import PerceiverClassificationDecoder, PerceiverModel

    model = build("perceiver")
    assert isinstance(model.perceiver, PerceiverModel)
    assert isinstance(model.perceiver.decoder, PerceiverClassificationDecoder)
    assert model.perceiver.config.d_model == 32 and model.perceiver.config.num_labels == 5


def test_time_encodings():
    t = torch.tensor([[0.0, 0.5, 60.0]])
    for module in (Time2Vec(8), SinusoidalTime(8)):
        out = module(t)
        assert out.shape == (1, 3, 8) and torch.isfinite(out).all()
        assert not torch.allclose(out[0, 0], out[0, 1])
    # Time2Vec: one linear and k periodic components (Kazemi et al. 2019)
    t2v = Time2Vec(8, k=4)
    assert t2v.proj.in_features == 5


def test_time2vec_initialisation_leaves_loaded_weights_alone():
    """transformers marks weights it loaded with `_is_hf_initialized`; re-initialising the model after a
    load (transformers 5.0 does it when tied weights count as missing) must not reset them."""
    t2v = Time2Vec(8, k=4)
    with torch.no_grad():
        for p in (t2v.w0, t2v.b0, t2v.w, t2v.b):
            p.fill_(7.0)
            p._is_hf_initialized = True
    t2v.reset_time_parameters()
    assert all(torch.all(p == 7.0) for p in (t2v.w0, t2v.b0, t2v.w, t2v.b))
    fresh = Time2Vec(8, k=4)
    assert fresh.w0.item() == pytest.approx(0.01) and fresh.b0.item() == 0.0


def test_probe_defaults_to_the_encoders_own_width_with_width_over_64_heads(digits, tmp_path):
    from alex.heads.probe import ProbeOptions
    from alex.heads.training import train

    data, store = digits
    train(ProbeOptions(store=store, labels=data.labels, output=tmp_path / "p", inputs=["clip"], epochs=1, device="cpu"))
    from alex.heads import load_head

    probe = load_head(tmp_path / "p")
    assert probe.config.hidden_size == 32 and probe.config.num_heads == 1  # the tiny CLIP's 32-d embeddings
    assert isinstance(probe.tokenizer.projections["clip"], torch.nn.Identity)  # no down-projection
    from alex.heads.probe.configuration_probe import heads_for

    assert [heads_for(w) for w in (1024, 768, 32, 200, 3072)] == [16, 12, 1, 2, 48]


def test_multi_clip_prediction_averages_each_clips_probabilities():
    """K = 2 clips over 4 steps at 0, 1, 2, 3 s: steps 0-1 and 2-3, each classified alone."""
    torch.manual_seed(0)
    config = ProbeConfig(inputs=["clip"], input_dims=[16], hidden_size=32, id2label=LABELS, clips_per_video=2)
    two = AttentiveProbe(config).eval()
    one = AttentiveProbe(ProbeConfig(**{**config.to_dict(), "clips_per_video": 1})).eval()
    one.load_state_dict(two.state_dict())
    g = torch.Generator().manual_seed(3)
    features = torch.randn(1, 4, 16, generator=g)
    times = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    full = torch.ones(1, 4, dtype=torch.bool)
    labels = torch.tensor([2])
    with torch.no_grad():
        out = two({"clip": features}, {"clip": times}, {"clip": full}, labels=labels)
        halves = [one({"clip": features[:, s]}, {"clip": times[:, s]}, {"clip": full[:, s]}, labels=labels)
                  for s in (slice(0, 2), slice(2, 4))]
    expected = (halves[0].logits.softmax(-1) + halves[1].logits.softmax(-1)) / 2
    torch.testing.assert_close(out.logits.exp(), expected)
    torch.testing.assert_close(out.loss, (halves[0].loss + halves[1].loss) / 2)
    # a video too short for its clips: the empty clip counts for nothing
    with torch.no_grad():
        short = two({"clip": features[:, :1]}, {"clip": times[:, :1]}, {"clip": full[:, :1]})
        alone = one({"clip": features[:, :1]}, {"clip": times[:, :1]}, {"clip": full[:, :1]})
    torch.testing.assert_close(short.logits.exp(), alone.logits.softmax(-1))
