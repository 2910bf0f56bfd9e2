"""Which ``--device`` values alex takes, checked before torch is imported: ``auto`` (a GPU when there
is one), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. Anything else is a usage error, not a crash."""

from __future__ import annotations

import re

from alex.errors import UsageError

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(device: str) -> str:
    if not DEVICE_PATTERN.fullmatch(str(device)):
        raise UsageError(f"--device {device}: choose auto, cpu, cuda, cuda:N or mps")
    return str(device)
