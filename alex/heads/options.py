"""What ``alex train``, ``alex evaluate`` and ``alex predict`` take: dataclasses, the one source of
defaults (as LeRobot's ``configs/train.py``).

The command line is derived from these fields (``alex.cli_options``): one flag per field, its help
from the field's metadata; an option the user does not give keeps the dataclass default, so the
CLI and the Python API cannot drift apart. Each head extends ``TrainOptions`` in its own folder
(``alex/heads/<head>/options.py``) with what is its own. Values are normalised and checked here
(``"clip,audio"`` -> ``["clip", "audio"]``, ``"0.7,0.15,0.15"`` -> a tuple, ``--set key=value``
pairs -> a dict), so usage errors surface before anything heavy is imported.

Light on purpose: no torch, no transformers (``alex --help`` imports this module).
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Sequence

from alex.devices import check_device
from alex.store.location import store_location
from alex.errors import UsageError

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
TIME_ENCODINGS = ("time2vec", "sinusoidal", "none")
SPLITS = ("train", "validation", "test")


def option(default: Any = MISSING, *, help: str, flags: Sequence[str] = (), choices: Sequence[str] | None = None,
           default_factory: Any = MISSING, argument: bool = False, metavar: str | None = None) -> Any:
    """A dataclass field that also describes its command-line flag: ``flags`` (default
    ``--field-name``), ``help``, allowed ``choices`` (checked in ``__post_init__``), ``argument``
    for a positional one, ``metavar`` for how the value is written."""
    metadata = {"help": help, "flags": tuple(flags), "choices": tuple(choices) if choices else None,
                "argument": argument, "metavar": metavar}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def parse_names(value: str | Sequence[str], what: str) -> list[str]:
    """``"clip,audio"`` or ``["clip", "audio"]`` -> ``["clip", "audio"]``."""
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n).strip() for n in value]
    names = [n for n in names if n]
    if not names:
        raise UsageError(f"{what}: give at least one name (e.g. {what} clip)")
    return names


def parse_split(value: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.7,0.15,0.15"`` or three numbers -> (train, validation, test) fractions that sum to 1."""
    try:
        fractions = tuple(float(x) for x in (value.split(",") if isinstance(value, str) else value))
    except ValueError:
        fractions = ()
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise UsageError(f"--split-fractions {value!r}: expected three non-negative fractions that sum to 1, "
                         "train,validation,test (e.g. 0.7,0.15,0.15)")
    return fractions  # type: ignore[return-value]


def parse_settings(value: dict[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """``["num_queries=4", "name=x"]`` -> ``{"num_queries": 4, "name": "x"}``: values are read as
    JSON when they parse (numbers, true, lists), else kept as text."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    parsed = {}
    for item in value:
        key, sep, text = str(item).partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected key=value (e.g. --set num_queries=4)")
        try:
            parsed[key] = json.loads(text)
        except json.JSONDecodeError:
            parsed[key] = text
    return parsed


def check_settings(config_class: type, settings: dict[str, Any], head: str, given: dict[str, Any] | None = None) -> None:
    """Every ``--set`` key is a parameter of the head's config class (or a field every transformers
    config has): configs take ``**kwargs``, so a misspelt key would otherwise be kept silently and
    change nothing."""
    import inspect

    from transformers import PretrainedConfig

    own = set()  # the parameters of the config class and of its bases up to PretrainedConfig
    for cls in config_class.__mro__:
        if cls is PretrainedConfig or "__init__" not in vars(cls):
            continue
        own |= {name for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name != "self"}
    known = own | set(PretrainedConfig().to_dict())
    unknown = sorted(set(given if given is not None else settings) - known)
    if unknown:
        raise UsageError(f"--set {unknown[0]}=...: the {head} head's config has no {unknown[0]!r}; it takes "
                         + ", ".join(sorted(own)))


def check_choices(options: Any) -> None:
    """Every field declared with ``choices`` holds one of them."""
    for f in fields(options):
        allowed = f.metadata.get("choices")
        value = getattr(options, f.name)
        if allowed and value not in allowed:
            flag = option_flags(f)[0]
            raise UsageError(f"{flag} {value}: choose one of {', '.join(allowed)}")


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def option_flags(f: Any) -> tuple[str, ...]:
    """A field's command-line flags, the main one first (``--lr`` for ``learning_rate``)."""
    return f.metadata.get("flags") or (flag_name(f.name),)


@dataclass(kw_only=True)
class TrainOptions:
    """What every head's training takes: the store, the labels, the run folder, the inputs and the
    optimisation (AdamW, cosine schedule with warm-up, early stopping). ``head`` names the head
    family; each subclass in ``alex/heads/<head>/options.py`` sets it and adds its own fields."""

    head: ClassVar[str] = ""

    store: str = option(help="Feature store written by `alex extract`, a folder or an fsspec URL (--features is the old spelling).")
    labels: Path = option(help="Labels: CSV, JSON Lines or Parquet keyed by video_id (label, text/prompt, or "
                               "timestamp/actions rows), optional split column.")
    output: Path = option(flags=("--output", "-o"),
                          help="Run folder: head, configs, metrics, plots, checkpoints, TensorBoard logs.")
    inputs: list[str] = option(default_factory=lambda: ["clip"], metavar="NAME[,NAME]",
                               help="Comma-separated store encoders the head reads, e.g. clip,audio.")
    epochs: int = option(30, help="Maximum number of epochs (early stopping may end sooner).")
    batch_size: int = option(32, help="Videos per training batch.")
    learning_rate: float = option(1e-3, flags=("--lr", "--learning-rate"),
                                  help="Peak learning rate (AdamW, cosine schedule after warm-up).")
    weight_decay: float = option(0.05, help="AdamW weight decay.")
    warmup: float = option(0.1, help="Warm-up, as a fraction of all training steps.")
    seed: int = option(0, help="Seeds the head's initial weights and the data order (reproducible on CPU).")
    split_fractions: tuple[float, float, float] = option(
        DEFAULT_FRACTIONS, metavar="TRAIN,VAL,TEST",
        help="train,validation,test fractions when the labels have no split column (a video's split is a hash of its "
             "id, so it never moves between runs). Old spelling: --split.")
    patience: int = option(5, help="Stop after this many epochs without a better validation metric.")
    device: str = option("auto", help="auto, cpu, cuda or cuda:N (a GPU trains in bf16, or fp16 without bf16).")
    num_workers: int = option(0, flags=("--workers",), help="DataLoader worker processes.")
    resume: bool = option(False, help="Continue the run in --output from its last checkpoint; refused when other "
                                      "options differ from the run's (listed), unless --allow-config-change.")
    allow_config_change: bool = option(False, help="With --resume: continue even though options differ from the ones "
                                                   "the run was started with (epochs, patience, device, workers may "
                                                   "always change).")
    head_config: dict[str, Any] = option(default_factory=dict, flags=("--set",), metavar="KEY=VALUE",
                                         help="Head config key=value (repeatable), e.g. --set num_queries=4.")
    quiet: bool = option(False, flags=("--quiet", "-q"),
                         help="No progress: no bar or epoch table on a terminal, no status lines elsewhere (every "
                              "$ALEX_PROGRESS_INTERVAL s, default 30).")

    def __post_init__(self) -> None:
        self.store, self.labels, self.output = store_location(self.store), Path(self.labels), Path(self.output)
        self.inputs = parse_names(self.inputs, "--inputs")
        self.split_fractions = parse_split(self.split_fractions)
        self.head_config = parse_settings(self.head_config)
        own = sorted(set(self.head_config) & {f.name for f in fields(self)})
        if own:
            flag = option_flags(next(f for f in fields(self) if f.name == own[0]))[0]
            raise UsageError(f"--set {own[0]}=...: {own[0]} is an option of its own; give it as {flag} "
                             f"{self.head_config[own[0]]}")
        if self.epochs < 1 or self.batch_size < 1:
            raise UsageError(f"--epochs {self.epochs} and --batch-size {self.batch_size} must be at least 1")
        if self.patience < 1:
            raise UsageError(f"--patience {self.patience}: must be at least 1")
        if not 0 <= self.warmup < 1:
            raise UsageError(f"--warmup {self.warmup}: a fraction of the training steps, in [0, 1)")
        check_choices(self)
        check_device(self.device)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
        data["split_fractions"] = list(self.split_fractions)
        return {"head": self.head, **data}


@dataclass(kw_only=True)
class EvaluateOptions:
    """``alex evaluate RUN``: metrics of a trained head on one split of a labels file, split by the
    run's own rule."""

    run: Path = option(argument=True, help="Run folder written by `alex train`.")
    store: str = option(help="Feature store with the head's inputs, a folder or URL (--features is the old spelling).")
    labels: Path = option(help="Labels file (split by the run's own rule unless it has a split column).")
    split: str = option("test", choices=SPLITS, help="Which split to evaluate: train, validation or test.")
    device: str = option("auto", help="auto, cpu, cuda or cuda:N.")
    batch_size: int | None = option(None, help="Videos per batch (default: the batch size the run trained with).")

    def __post_init__(self) -> None:
        self.run, self.store, self.labels = Path(self.run), store_location(self.store), Path(self.labels)
        check_device(self.device)
        check_batch_size(self.batch_size)
        check_choices(self)


@dataclass(kw_only=True)
class PredictOptions:
    """``alex predict RUN``: predictions for every usable video of a store, as Parquet that joins
    the store's ``videos`` on ``video_id``."""

    run: Path = option(argument=True, help="Run folder written by `alex train`.")
    store: str = option(help="Feature store with the head's inputs, a folder or URL (--features is the old spelling).")
    output: Path = option(flags=("--output", "-o"),
                          help="Parquet file; its columns depend on the head (label and probabilities, text, or actions).")
    device: str = option("auto", help="auto, cpu, cuda or cuda:N.")
    batch_size: int | None = option(None, help="Videos per batch (default: the batch size the run trained with).")
    prompt: str | None = option(None, help="Generative heads: the question asked of every video (t5 vqa, llm qa).")
    questions: Path | None = option(None, metavar="FILE",
                                    help="Generative heads: a CSV, JSON Lines or Parquet file of video_id and prompt, "
                                         "any number of questions per video; one prediction row per question.")

    def __post_init__(self) -> None:
        self.run, self.store, self.output = Path(self.run), store_location(self.store), Path(self.output)
        if self.questions is not None:
            self.questions = Path(self.questions)
            if self.prompt is not None:
                raise UsageError("choose one of --prompt (one question for every video) and --questions FILE")
        check_device(self.device)
        check_batch_size(self.batch_size)


def check_batch_size(batch_size: int | None) -> None:
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")



@dataclass(kw_only=True)
class ClassifierOptions(TrainOptions):
    """A classification head over the feature tokens (probe, perceiver): its width and time encoding."""

    hidden_size: int | None = option(128, help="Width of the head.")
    timestamp_encoding: str = option("sinusoidal", choices=TIME_ENCODINGS,
                                     help="How each step's time is added to its token: time2vec, sinusoidal or none.")
    clips_per_video: int = option(1, help="Split each video's time span into this many clips: the head classifies each "
                                          "clip alone (training on every clip) and a video's prediction averages its "
                                          "clips' probabilities, as V-JEPA's multi-clip evaluation.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clips_per_video < 1 or (self.hidden_size is not None and self.hidden_size < 1):
            raise UsageError(f"--clips-per-video {self.clips_per_video} and --hidden-size {self.hidden_size} must be at least 1")


@dataclass(kw_only=True)
class GenerativeOptions(TrainOptions):
    """A head that generates text around a pretrained model (t5, llm): ``model`` is that checkpoint."""

    tasks: ClassVar[tuple[str, ...]] = ()

    model: str | None = option(None, flags=("--model", "--t5", "--llm"), metavar="ID_OR_PATH",
                               help="The head's pretrained part: a hub id or a local folder (a T5 or BART checkpoint, a causal LM, a multimodal Perceiver). "
                                    "--t5 and --llm are aliases.")
    task: str = option("caption", help="What the head learns: t5 caption, vqa, classify or span; llm caption, qa or action.")
    batch_size: int = option(16, help="Videos per training batch.")
    weight_decay: float = option(0.0, help="AdamW weight decay.")
    warmup: float = option(0.05, help="Warm-up, as a fraction of all training steps.")
    timestamp_encoding: str = option("time2vec", choices=TIME_ENCODINGS,
                                     help="How each step's time is added to its token: time2vec, sinusoidal or none.")
    max_new_tokens: int = option(32, help="Longest generation, saved in the run's generation_config.json.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.model:
            example = {"t5": "t5-small", "llm": "Qwen/Qwen2.5-0.5B"}.get(self.head, "ID_OR_PATH")
            raise UsageError(f"--head {self.head} needs --model ID_OR_PATH, its pretrained part (e.g. --model {example})")
        if self.task not in self.tasks:
            raise UsageError(f"--task {self.task} for --head {self.head}: choose one of {', '.join(self.tasks)}")
