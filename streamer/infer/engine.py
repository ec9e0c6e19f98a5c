"""The model behind a small interface: windows in, probabilities and explanations out.

Runs in ONE dedicated thread (``run`` is called via an executor) so the asyncio loop keeps
polling and heartbeating while torch computes; torch releases the GIL inside its kernels.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from streamer.model.steps import to_window_positions

log = logging.getLogger(__name__)

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(slots=True)
class InferResult:
    probs: np.ndarray  # [B, K] float32
    step_weights: np.ndarray | None  # [B, T] attention weights, None without attention
    channel_weights: np.ndarray  # [B, F] attention-weighted |deviation| per channel
    seconds: float


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("model.device=cuda but no CUDA device is available")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


class InferenceEngine:
    def __init__(self, model: torch.nn.Module, *, device: str = "auto", precision: str = "fp32",
                 torch_threads: int = 0):
        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.device = pick_device(device)
        self.precision = precision
        if precision != "fp32" and self.device.type != "cuda":
            log.warning("precision %s needs CUDA; using fp32 on %s", precision, self.device)
            self.precision = "fp32"
        if self.device.type == "cuda" and self.precision == "fp32":
            # cuDNN runs an LSTM in TF32 by default (~3e-4 relative error): fp32 means fp32.
            # Process-wide flags; the daemon holds one engine. The model is small enough
            # that TF32 buys no measurable speed; bf16 is the fast option.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        if self.device.type == "cpu":
            # A reading far outside the training range (a TC spike in the relative input, a
            # wild but valid process tag) saturates the LSTM gates; their exp() underflows to
            # denormal floats, which x86 cores compute ~100x slower: measured, inference fell
            # from 1,359 to 645 windows/s on such windows. Flushed to zero they change no output
            # measurably (all are below 1.2e-38). Process-wide, like the thread count.
            torch.set_flush_denormal(True)
        self.model = model.to(self.device).eval()
        self._autocast = self.precision != "fp32"
        self._pin = self.device.type == "cuda"

    def warmup(self, window: int, n_features: int, batch_sizes: tuple[int, ...] = (1, 8, 64)
               ) -> float:
        """Run each batch shape once (allocator, cuDNN plans, thread pools); seconds taken."""
        t0 = time.perf_counter()
        for b in batch_sizes:
            x = np.zeros((b, window, n_features), dtype=np.float32)
            lengths = np.full(b, window, dtype=np.int64)
            self.run(x, lengths)
            if b > 1:
                lengths[0] = max(1, window // 2)
                self.run(x, lengths)
        return time.perf_counter() - t0

    def run(self, windows: np.ndarray, lengths: np.ndarray) -> InferResult:
        t0 = time.perf_counter()
        x = torch.from_numpy(windows)
        if self._pin:
            x = x.pin_memory().to(self.device, non_blocking=True)
        full = bool((lengths == windows.shape[1]).all())
        lens: Any = None if full else torch.from_numpy(lengths)
        with torch.inference_mode(), torch.autocast(
            self.device.type, dtype=_DTYPES[self.precision], enabled=self._autocast
        ):
            out = self.model.get_layer_outputs(x, lens)
            probs = torch.sigmoid(out["logits"].float())
            att = out.get("attention")
            z = out["input"].float()  # normalised input of the part the LSTM read, padding 0
            T = z.shape[1]
            read_lens = out["read_lengths"]
            if read_lens is None:
                valid = torch.ones(z.shape[:2], dtype=torch.bool, device=z.device)
            else:
                valid = (torch.arange(T, device=z.device)[None, :]
                         < read_lens.to(z.device)[:, None])
            n = valid.sum(1, keepdim=True).clamp(min=1).unsqueeze(-1)
            mean = (z * valid.unsqueeze(-1)).sum(1, keepdim=True) / n
            dev = (z - mean).abs() * valid.unsqueeze(-1)
            w = att.float() if att is not None else valid.float() / n.squeeze(-1)
            channel_w = torch.einsum("bt,btf->bf", w, dev)
            n_ch = windows.shape[2]
            if channel_w.shape[1] != n_ch:  # derived inputs (relative, signature): fold
                channel_w = _fold_to_channels(channel_w, self.model.input_sources, n_ch)
            result = InferResult(
                probs=probs.cpu().numpy(),
                step_weights=None if att is None else to_window_positions(
                    att.float(), out["read_start"], windows.shape[1]).cpu().numpy(),
                channel_weights=channel_w.float().cpu().numpy(),  # bf16 has no numpy type
                seconds=0.0,
            )
        result.seconds = time.perf_counter() - t0
        return result


def _fold_to_channels(w: torch.Tensor, sources: torch.Tensor, n_ch: int) -> torch.Tensor:
    """Sum the weights of every model input onto the reading channel it describes."""
    keep = sources >= 0
    out = w.new_zeros(len(w), n_ch)
    return out.index_add_(1, sources[keep].to(w.device), w[:, keep.to(w.device)])
