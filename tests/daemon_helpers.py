"""Helpers for daemon tests: a small untrained checkpoint and synthetic readings."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from streamer.channels import ChannelLayout
from streamer.formats.reading import encode_reading

CHANNELS = list(ChannelLayout().channels)


def tiny_checkpoint(path: Path, window: int = 20, seed: int = 0) -> Path:
    from streamer.model.checkpoint import save_checkpoint
    from streamer.model.lstm import SteelDefectLSTM, default_config

    torch.manual_seed(seed)
    cfg = default_config()
    cfg["architecture"]["hidden_size"] = 32
    cfg["architecture"]["num_layers"] = 1
    cfg["attention"]["hidden_size"] = 8
    cfg["classifier"]["hidden_sizes"] = [8]
    cfg["data"]["window"] = window
    model = SteelDefectLSTM(cfg)
    save_checkpoint(path, model, metadata={"purpose": "tests"})
    return path


def untrained_checkpoint(path: Path, channels: list[str], window: int = 120,
                         data_seeds: tuple[int, ...] = (7,), seed: int = 0) -> str:
    """A small untrained model (32 hidden, 1 layer) for ``channels``, its weights drawn with
    ``seed``, recorded as trained on ``data_seeds`` so that seed checks have something to
    refuse; returns its model id."""
    from streamer.model.checkpoint import save_checkpoint
    from streamer.model.lstm import SteelDefectLSTM, default_config

    torch.manual_seed(seed)
    cfg = default_config()
    cfg["architecture"].update(hidden_size=32, num_layers=1, input_size=len(channels))
    cfg["data"]["channels"] = list(channels)
    cfg["data"]["window"] = window
    return save_checkpoint(path, SteelDefectLSTM(cfg), metadata={"data_seeds": list(data_seeds)})


def values_at(i: int, strand_no: int = 0) -> dict[str, float]:
    v = {"casting_speed": 1.2, "mould_level": 2 * math.sin(i / 7), "superheat": 30.0,
         "water_flow": 3800.0, "water_dt": 7.0}
    for c in CHANNELS[5:]:
        v[c] = 150.0 + 5 * math.sin(i / 11 + strand_no) + (hash(c) % 7)
    return v


def reading(strand: str, seq: int, ts0: float = 1_764_000_000.0, strand_no: int = 0,
            **over: float | None) -> bytes:
    v: dict[str, float | None] = dict(values_at(seq, strand_no))
    v.update(over)
    return encode_reading(strand, "C1-H00001", ts0 + seq, seq, v)
