"""``audio``: log-mel features of the audio track, one window per sampled step.

The track is decoded by PyAV in the same pass as the video, resampled to 16 kHz mono, and cut
into windows that start at the sampling targets (one per step, as long as the step), so audio
rows share the video's clock. Each window becomes a log-mel spectrogram computed with
transformers' audio utilities (``spectrogram`` with a Slaney mel filter bank, 25 ms Hann
windows, 10 ms hop); the HDF5 array ``logmel`` keeps it whole (frames x mel bins) and the
pooled vector in ``frames`` is its mean over time. ``audio`` has 64 mel bins, ``audio:tiny``
16, ``audio:N`` any N. A video without an audio track has no audio rows and a ``no_audio`` item
(shown by the ``videos`` view's ``no_audio`` column); that is not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from alex.errors import EncoderSpecError
from alex.pipeline.encoders.base import EncoderOutput
from alex.pipeline.encoders.spec import EncoderSpec
from alex.pipeline.steps import StepSpec

if TYPE_CHECKING:  # checking a spec (a usage error, a no-op rerun) needs no torch
    import torch

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
DEFAULT_MELS = 64
TINY_MELS = 16


@dataclass
class LogMel:
    """Mono float32 samples -> (frames, n_mels) log10 mel energies (transformers.audio_utils)."""

    n_mels: int
    rate: int = SAMPLE_RATE
    _bank: Any = field(default=None, repr=False, compare=False)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

        if self._bank is None:
            self._bank = mel_filter_bank(
                num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=self.n_mels, min_frequency=0.0,
                max_frequency=self.rate / 2, sampling_rate=self.rate, norm="slaney", mel_scale="slaney",
            )
        mel = spectrogram(
            samples.astype(np.float32), window_function(N_FFT, "hann"), frame_length=N_FFT, hop_length=HOP,
            power=2.0, mel_filters=self._bank, log_mel="log10", mel_floor=1e-10,
        )  # (n_mels, frames)
        return np.ascontiguousarray(mel.T.astype(np.float32))  # (frames, n_mels)

    def __getstate__(self) -> dict[str, Any]:  # the filter bank is rebuilt where it is used
        return {"n_mels": self.n_mels, "rate": self.rate, "_bank": None}


class AudioEncoder:
    family = "audio"

    @staticmethod
    def identity(spec: EncoderSpec, **_: Any) -> dict[str, Any]:
        if spec.weights not in (None, "random", "none"):
            raise EncoderSpecError(f"audio has no weights (log-mel features); got @{spec.weights}")
        model = spec.model or str(DEFAULT_MELS)
        mels = TINY_MELS if model == "tiny" else model
        try:
            mels = int(mels)
        except ValueError:
            raise EncoderSpecError(f"audio:{model}: the model part is the number of mel bins (audio:64) or 'tiny'") from None
        if not 4 <= mels <= 256:
            raise EncoderSpecError(f"audio:{mels}: mel bins must be between 4 and 256")
        return {"family": "audio", "model": str(mels), "weights": None, "spec": f"audio:{mels}"}

    def __init__(self, spec: EncoderSpec, device: torch.device, **_: Any):
        self._identity = self.identity(spec)
        self.n_mels = int(self._identity["model"])
        self.device = device
        self.dim = self.n_mels
        self.steps = StepSpec("audio", features=LogMel(self.n_mels), rate=SAMPLE_RATE)

    def encode(self, batch: torch.Tensor) -> EncoderOutput:
        """(B, frames, n_mels) log-mel windows -> pooled (B, n_mels) mean over time, and the windows."""
        logmel = batch.detach().float()
        return EncoderOutput(pooled=logmel.mean(dim=1), arrays={"logmel": logmel})

    def config(self) -> dict[str, Any]:
        return {
            **self._identity,
            "dim": self.dim,
            "array": "logmel",
            "preprocessing": {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop_length": HOP, "n_mels": self.n_mels,
                              "window": "hann", "mel_scale": "slaney", "log": "log10", "floor": 1e-10},
        }
