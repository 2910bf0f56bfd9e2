"""Finding weights without hanging: local files first, then the HF cache, then the hub.

Shared by the encoders (``alex.pipeline``) and the heads (``alex.heads``).

A hub download on a machine that cannot reach the hub retries for most of a minute. alex
checks first (a cached file, or one 3-second request to the hub through huggingface_hub's own
session, proxies and offline mode honoured) and fails fast with
a message saying what was looked for and how to point alex at local weights.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from alex.errors import UsageError, WeightsUnavailableError

FOLDER_HINT = "pass the local folder the model was saved to (save_pretrained, or a downloaded hub snapshot)"


def offline_help(local_hint: str = FOLDER_HINT) -> str:
    """What to do without network access: ``local_hint`` says how this kind of model is given locally."""
    return (f"Without network access: download the weights elsewhere and {local_hint}, or copy a HuggingFace "
            "cache folder here and set HF_HOME. To try alex fully offline: `alex demo`, or "
            "--encoder pixels / --encoder clip:tiny@random (random weights, for testing only).")


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


@lru_cache(maxsize=None)
def hub_reachable(endpoint: str | None = None, timeout: float = 3.0) -> bool:
    """Whether the hub (or ``endpoint``, a weights URL) answers within ``timeout``.

    False at once in huggingface_hub's offline mode (``HF_HUB_OFFLINE=1``, read as it does, also
    when set after it was imported). Otherwise one HEAD request through huggingface_hub's own HTTP
    session, which honours the environment's proxy settings (``HTTPS_PROXY``, ``NO_PROXY``...) as
    every download of theirs does: any HTTP answer, even an error status, means reachable; a
    connection, proxy or TLS failure, or the timeout, means not."""
    from huggingface_hub import is_offline_mode
    from huggingface_hub.utils import get_session

    if is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return False
    try:
        get_session().head(endpoint or hub_endpoint(), timeout=timeout)
        return True
    except Exception:  # httpx / requests connection, proxy and timeout errors alike: not reachable
        return False


def hub_file(repo_id: str, filenames: list[str], what: str) -> str | None:
    """The first of ``filenames`` that ``repo_id`` has: from the local cache, else downloaded.

    None only when the repo is known to have none of them (the hub said so, now or in the cache's
    record of missing files). A download that fails for any other reason (network, proxy, gated or
    missing repo, disk) raises WeightsUnavailableError with the reason: it is never read as "the
    file does not exist", which would silently change what is computed."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError
    from huggingface_hub.file_download import _CACHED_NO_EXIST

    unknown = []
    for filename in filenames:
        cached = try_to_load_from_cache(repo_id, filename)
        if isinstance(cached, str) and os.path.isfile(cached):
            return cached
        if cached is not _CACHED_NO_EXIST:
            unknown.append(filename)
    if not unknown:
        return None
    require_hub(what, f"{repo_id}/{unknown[0]}")
    for filename in unknown:
        try:
            return hf_hub_download(repo_id, filename)
        except EntryNotFoundError:
            continue
        except Exception as exc:
            raise WeightsUnavailableError(f"{what}: downloading {repo_id}/{filename} failed: "
                                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    return None


def cached_hub_file(repo_id: str, filenames: list[str]) -> str | None:
    """The first of ``filenames`` already in the local HF cache for ``repo_id``, or None."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        path = try_to_load_from_cache(repo_id, filename)
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def require_hub(what: str, looked_for: str, local_hint: str = FOLDER_HINT) -> None:
    """Raise WeightsUnavailableError at once when ``looked_for`` is not cached and the hub is unreachable."""
    if not hub_reachable():
        raise WeightsUnavailableError(
            f"cannot get weights for {what}: looked for {looked_for} in the local HuggingFace cache "
            f"and could not reach {hub_endpoint()}. {offline_help(local_hint)}"
        )


def check_model_available(model: str, what: str, filename: str = "config.json") -> None:
    """A local folder must hold ``filename``; a hub id must be cached or the hub reachable."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / filename).is_file():
            raise UsageError(f"{what} {model}: the folder has no {filename}")
        return
    if model.startswith((".", "/", "~")) or os.sep in model and path.parent.exists():
        raise UsageError(f"{what} {model}: no such folder")
    if cached_hub_file(model, [filename]) is None:
        require_hub(f"{what} {model}", f"{model}/{filename}")


def local_only(model: str) -> bool:
    """Load from local files only: a folder, or a hub id while the hub cannot be reached (no retries)."""
    return Path(model).expanduser().is_dir() or not hub_reachable()


def load_tokenizer(name_or_path: str | Path, what: str = "--model"):
    """A transformers tokenizer by hub id or folder (after ``check_model_available`` on the model):
    local files only when the hub cannot be reached, so it fails at once."""
    from transformers import AutoTokenizer

    name = str(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=local_only(name))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{what} {name}: cannot load its tokenizer: {str(exc).splitlines()[0]}") from exc
