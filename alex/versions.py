"""The software that produced a row: recorded with every item a store holds, so a feature can be
traced to the alex, torch, open_clip / transformers and FFmpeg that computed it (issue 15)."""

from __future__ import annotations

import importlib.metadata
import json
import platform
from functools import lru_cache

# distribution -> the name recorded
PACKAGES = {"torch": "torch", "open_clip_torch": "open_clip", "transformers": "transformers", "av": "av", "numpy": "numpy"}


@lru_cache(maxsize=None)
def library_versions() -> dict[str, str]:
    """alex, Python, the installed packages of ``PACKAGES`` (read from their metadata: nothing is
    imported for it) and the FFmpeg libraries PyAV links (``libavcodec 62.28.102``...)."""
    from alex import __version__

    versions = {"alex": __version__, "python": platform.python_version()}
    for distribution, name in PACKAGES.items():
        try:
            versions[name] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        import av

        versions["ffmpeg"] = ", ".join(f"{lib} {'.'.join(map(str, v))}" for lib, v in sorted(av.library_versions.items())
                                       if lib in ("libavcodec", "libavformat", "libswscale", "libswresample"))
    except ImportError:
        pass
    return versions


def versions_json() -> str:
    """``library_versions()`` as the JSON text stored in the items' ``versions`` column."""
    return json.dumps(library_versions(), sort_keys=True)
