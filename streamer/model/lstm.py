"""SteelDefectLSTM: a window of strand readings in, one logit per defect type out.

Data flow (every stage but the LSTM is optional, switched by the config)::

    x [B, T, F]                     readings, one row per second, F channels
      -> last N readings            architecture.steps: the rest is context (columns.baseline)
      -> z-score (buffers)          normalization.input_norm: (x - mean) / std, stats fitted later
      (+ relative channels)         normalization.relative_input: (x - x_first) / stored scale
      (+ signature channels)        normalization.signature_features: rise rates, drops below
                                    the running mean, row inversions, level swing (signatures.py)
      -> BatchNorm1d(F)             normalization.input_batch_norm, over valid steps only
      -> LSTM                       architecture.*: lstm_out [B, T, D], D = hidden * directions
      -> pool to [B, D]             attention.enabled: softmax-weighted sum over valid steps,
                                    else the last-state read-out (below)
      (+ column summary [B, 2H_c])  columns.enabled: one small LSTM shared by every
                                    thermocouple column, max and mean over columns (columns.py);
                                    it reads the whole window x, for each TC's slow baseline
      -> LayerNorm(D), BatchNorm1d(D)   normalization.layer_norm, normalization.batch_norm
      -> [Linear, act, Dropout] * n classifier.hidden_sizes / activation / dropout
      -> Linear(num_outputs)        output.num_outputs logits: 3 = ("sticker", "crack", "slag"),
                                    1 = a single "defect" logit

Last-state read-out: the forward direction's summary is its state after the last VALID step;
the backward direction's summary is its state after reading the whole window backwards, i.e.
its output at t = 0. Both are the last layer's ``h_n`` that ``nn.LSTM`` returns (with packed
input it stops each sequence at its own length), so we read ``h_n``, never ``lstm_out[:, -1]``
(for the backward direction that position has seen a single step; for a padded sequence it
is padding).

Variable lengths: pass ``lengths`` (LongTensor [B]); sequences are packed
(``enforce_sorted=False``), padded positions get zero weight in attention and are left out of
the input batch-norm statistics, so a padded batch gives the same result as running each
sequence unpadded. Without ``lengths`` every window is full and packing is skipped.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from streamer.channels import DEFECT_TYPES, ChannelLayout
from streamer.model.columns import ColumnEncoder
from streamer.model.signatures import SignatureFeatures, source_channels, tc_grid
from streamer.model.steps import last_steps, to_window_positions
from streamer.validation_errors import field_errors
from streamer.yaml_file import read_yaml_mapping

# ---------------------------------------------------------------------------------------------
# Config


class ModelConfigError(ValueError):
    """The model config is invalid; the message names the field (``architecture.hidden_size``)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArchitectureConfig(_Section):
    input_size: int | None = Field(
        None, ge=1, description="features per step; None = len(data.channels)"
    )
    hidden_size: int = Field(64, ge=32, le=256)
    num_layers: int = Field(2, ge=1, le=4)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between LSTM layers")
    steps: int = Field(0, ge=0, description="read only the window's last N readings (the "
                       "earlier ones are context for columns.baseline); 0 = all")


class NormalizationConfig(_Section):
    input_norm: bool = Field(False, description="z-score with stored mean/std buffers")
    input_batch_norm: bool = Field(False, description="BatchNorm1d over the input features")
    layer_norm: bool = Field(False, description="LayerNorm on the pooled LSTM summary")
    batch_norm: bool = Field(False, description="BatchNorm1d on the pooled LSTM summary")
    relative_input: bool = Field(
        False, description="also feed each channel minus its value at the window's first "
        "step, scaled by stored per-channel stats: events are shapes, not levels")
    signature_features: bool = Field(
        False, description="also feed per-step defect-signature channels (TC rise rates, drops "
        "below the 65 s mean, row inversions, level swing) in units of the classical rule "
        "thresholds; needs data.channels with a complete thermocouple grid")


class ClassifierConfig(_Section):
    hidden_sizes: list[int] = Field(default_factory=lambda: [32, 16])
    activation: Literal["relu", "sigmoid", "tanh"] = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _positive(self) -> ClassifierConfig:
        if any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must all be >= 1, got {self.hidden_sizes}")
        return self


class AttentionConfig(_Section):
    enabled: bool = False
    hidden_size: int = Field(32, ge=1, description="width of the additive scorer")


class ColumnsConfig(_Section):
    enabled: bool = Field(
        False, description="also read every thermocouple column with one shared LSTM and add "
        "its max and mean over columns to the summary; needs data.channels with a complete "
        "thermocouple grid")
    hidden_size: int = Field(16, ge=4, le=128, description="hidden units of the column LSTM")
    steps: int = Field(0, ge=0, description="read only the window's last N readings; 0 = all")
    baseline: int = Field(
        0, ge=0, description="also give each TC's offset from its row minus that offset's "
        "mean over the first N readings before the last `steps` (a slow baseline); 0 = off")
    peaks: bool = Field(
        False, description="also give each row's largest held rise so far and the row below's "
        "minus the row above's (a sticker grows down its column, a near-sticker fades)")


class OutputConfig(_Section):
    num_outputs: int = Field(len(DEFECT_TYPES), ge=1, description="3 = per defect type, 1 = binary")


class DataConfig(_Section):
    window: int = Field(120, ge=2, description="steps per window (1 Hz readings)")
    channels: list[str] | None = Field(None, description="ordered channel names, one per feature")


class ModelConfig(_Section):
    architecture: ArchitectureConfig = Field(default_factory=ArchitectureConfig)
    normalization: NormalizationConfig = Field(default_factory=NormalizationConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    attention: AttentionConfig = Field(default_factory=AttentionConfig)
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    data: DataConfig = Field(default_factory=DataConfig)

    @model_validator(mode="after")
    def _input_size(self) -> ModelConfig:
        channels, size = self.data.channels, self.architecture.input_size
        if channels is not None:
            if len(set(channels)) != len(channels):
                raise ValueError("data.channels: duplicate channel names")
            if size is None:
                self.architecture.input_size = len(channels)
            elif size != len(channels):
                raise ValueError(
                    f"architecture.input_size ({size}) != len(data.channels) ({len(channels)})"
                )
        elif size is None:
            raise ValueError("architecture.input_size: required (or give data.channels)")
        col, window = self.columns, self.data.window
        for name, steps in (("architecture.steps", self.architecture.steps),
                            ("columns.steps", col.steps)):
            if steps > window:
                raise ValueError(f"{name} ({steps}) must be <= data.window ({window})")
        if col.baseline and not col.steps:
            raise ValueError("columns.baseline needs columns.steps > 0: the baseline readings "
                             "are those before the last `steps`")
        if col.baseline and col.steps + col.baseline > window:
            raise ValueError(f"columns.steps + columns.baseline ({col.steps} + {col.baseline})"
                             f" must be <= data.window ({window})")
        for name, on in (("normalization.signature_features",
                          self.normalization.signature_features),
                         ("columns.enabled", self.columns.enabled)):
            if not on:
                continue
            if channels is None:
                raise ValueError(f"{name} needs data.channels")
            try:
                tc_grid(channels)
            except ValueError as exc:
                raise ValueError(f"{name}: data.channels: {exc}") from None
        return self


def validate_config(config: dict[str, Any] | ModelConfig) -> dict[str, Any]:
    """The complete config (every default filled in) as a plain dict; ModelConfigError if bad."""
    if isinstance(config, ModelConfig):
        config = config.model_dump()
    if not isinstance(config, dict):
        raise ModelConfigError(f"model config must be a mapping, got {type(config).__name__}")
    try:
        return ModelConfig.model_validate(config).model_dump()
    except ValidationError as exc:
        raise ModelConfigError(
            f"invalid model config: {field_errors(exc, show_input=True)}") from None


def load_model_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a model config YAML file."""
    path = Path(path)
    data = read_yaml_mapping(path, ModelConfigError, "model config")
    try:
        return validate_config(data)
    except ModelConfigError as exc:
        raise ModelConfigError(f"model config {path}: {exc}") from None


def default_config() -> dict[str, Any]:
    """The production default (== configs/model/default.yaml): 29 channels, 3 defect logits."""
    channels = list(ChannelLayout().channels)
    return validate_config(
        {
            "architecture": {
                "input_size": len(channels),
                "hidden_size": 64,
                "num_layers": 2,
                "bidirectional": False,
                "dropout": 0.2,
            },
            "normalization": {
                "input_norm": True,
                "input_batch_norm": False,
                "layer_norm": True,
                "batch_norm": False,
                "relative_input": True,
                "signature_features": False,  # measured: no gain on stickers (docs/model.md)
            },
            "classifier": {"hidden_sizes": [32], "activation": "relu", "dropout": 0.2},
            "attention": {"enabled": True, "hidden_size": 32},
            "columns": {"enabled": True, "hidden_size": 16, "steps": 0},  # docs/training.md
            "output": {"num_outputs": len(DEFECT_TYPES)},
            "data": {"window": 120, "channels": channels},
        }
    )


def default_output_names(num_outputs: int) -> tuple[str, ...]:
    """Names of the logits: the defect types for 3 outputs, ("defect",) for 1."""
    if num_outputs == len(DEFECT_TYPES):
        return DEFECT_TYPES
    if num_outputs == 1:
        return ("defect",)
    raise ValueError(f"no default names for {num_outputs} outputs; give them explicitly")


# ---------------------------------------------------------------------------------------------
# Model

_ACTIVATIONS = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


class LogitModel(nn.Module):
    """What the daemon, the evaluation and the CLI call: logits and probabilities from
    ``_run`` (a dict of layer outputs with ``logits``). Shared by SteelDefectLSTM and
    streamer.model.ensemble.DefectEnsemble."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, F], lengths [B] (valid steps per row; None = all T) -> logits [B, outputs]."""
        return self._run(x, lengths)["logits"]

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Per-output probabilities (sigmoid of the logits); no gradients. Call eval() first."""
        return torch.sigmoid(self.forward(x, lengths))

    def _run(self, x: torch.Tensor, lengths: Any, trace: dict | None = None) -> dict:
        raise NotImplementedError


class SteelDefectLSTM(LogitModel):
    def __init__(self, config: dict[str, Any] | ModelConfig):
        super().__init__()
        self.config = validate_config(config)
        arch, norm = self.config["architecture"], self.config["normalization"]
        cls, att = self.config["classifier"], self.config["attention"]
        self.input_size: int = arch["input_size"]
        self.hidden_size: int = arch["hidden_size"]
        self.num_layers: int = arch["num_layers"]
        self.num_directions = 2 if arch["bidirectional"] else 1
        self.num_outputs: int = self.config["output"]["num_outputs"]
        self.steps: int = arch["steps"]  # the LSTM reads the window's last `steps` (0: all)
        d = self.hidden_size * self.num_directions  # width of lstm_out and of the pooled summary

        # Input normalisation. The z-score stats are buffers (saved with the weights, not
        # trained): identity until set_input_stats() is called with training-set statistics.
        if norm["input_norm"]:
            self.register_buffer("input_mean", torch.zeros(self.input_size))
            self.register_buffer("input_std", torch.ones(self.input_size))
        # Relative input: x_t - x_first / relative_std, concatenated to the (z-scored) input.
        # A sticker is a 6-20 degC rise on one of 24 thermocouples whose levels differ by more
        # than that: relative to the window's start it stands out, in absolute terms it hides.
        self.relative = bool(norm["relative_input"])
        if self.relative:
            self.register_buffer("relative_std", torch.ones(self.input_size))
        # Signature channels: the classical rules' quantities per step (signatures.py).
        channels = self.config["data"]["channels"]
        self.signatures = (SignatureFeatures(channels)
                           if norm["signature_features"] else None)
        sources = list(range(self.input_size)) * (2 if self.relative else 1)
        if self.signatures is not None:
            sources += source_channels(channels)
        # input_sources[j]: the reading channel that LSTM input j describes (-1: none), so
        # that explanations can name channels whatever the derived inputs are.
        self.register_buffer("input_sources", torch.tensor(sources), persistent=False)
        lstm_in = len(sources)
        self.input_bn = nn.BatchNorm1d(lstm_in) if norm["input_batch_norm"] else None

        self.lstm = nn.LSTM(
            input_size=lstm_in,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=arch["bidirectional"],
            dropout=arch["dropout"] if self.num_layers > 1 else 0.0,  # only acts between layers
            batch_first=True,
        )

        # Additive attention: score_t = v . tanh(W h_t + b), softmax over the valid steps.
        if att["enabled"]:
            self.attn_proj = nn.Linear(d, att["hidden_size"])
            self.attn_score = nn.Linear(att["hidden_size"], 1, bias=False)
        else:
            self.attn_proj = self.attn_score = None

        col = self.config["columns"]
        self.columns = (ColumnEncoder(channels, col["hidden_size"], col["steps"],
                                      baseline=col["baseline"], peaks=col["peaks"])
                        if col["enabled"] else None)
        if self.columns is not None:
            d += self.columns.out_features  # the head reads [pooled, column summary]

        self.post_ln = nn.LayerNorm(d) if norm["layer_norm"] else None
        self.post_bn = nn.BatchNorm1d(d) if norm["batch_norm"] else None

        sizes = [d, *cls["hidden_sizes"]]
        self.classifier = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.activation = _ACTIVATIONS[cls["activation"]]
        self.classifier_dropout = nn.Dropout(cls["dropout"])
        self.head = nn.Linear(sizes[-1], self.num_outputs)

        self._init_lstm_weights()

    def _init_lstm_weights(self) -> None:
        # Xavier for input->hidden, orthogonal for hidden->hidden, forget-gate bias 1 (gates are
        # stacked i, f, g, o in PyTorch): keeps gradients alive over long windows early on.
        lstms = [self.lstm] + ([self.columns.lstm] if self.columns is not None else [])
        for lstm in lstms:
            h = lstm.hidden_size
            for name, p in lstm.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(p)
                elif name.startswith("weight_hh"):
                    for k in range(4):
                        nn.init.orthogonal_(p.data[k * h : (k + 1) * h])
                elif name.startswith("bias"):
                    nn.init.zeros_(p)
                    if name.startswith("bias_ih"):
                        nn.init.ones_(p.data[h : 2 * h])

    # -- input statistics ------------------------------------------------------------------

    def set_input_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the z-score statistics (per feature, from the training data)."""
        if not self.config["normalization"]["input_norm"]:
            raise ModelConfigError(
                "set_input_stats: normalization.input_norm is off in this config"
            )
        mean = torch.as_tensor(mean, dtype=self.input_mean.dtype).flatten()
        std = torch.as_tensor(std, dtype=self.input_std.dtype).flatten()
        for label, t in (("mean", mean), ("std", std)):
            if t.numel() != self.input_size:
                raise ValueError(
                    f"input {label} has {t.numel()} values, expected {self.input_size}"
                )
            if not torch.isfinite(t).all():
                raise ValueError(f"input {label} has non-finite values")
        if (std <= 0).any():
            raise ValueError("input std must be > 0 for every feature")
        self.input_mean.copy_(mean)
        self.input_std.copy_(std)

    def set_relative_stats(self, std: torch.Tensor) -> None:
        """Scale of (x_t - x_first) per channel: std of a window's change on the training data."""
        if not self.relative:
            raise ModelConfigError("set_relative_stats: normalization.relative_input is off")
        std = torch.as_tensor(std, dtype=self.relative_std.dtype).flatten()
        if std.numel() != self.input_size or not torch.isfinite(std).all() or (std <= 0).any():
            raise ValueError(f"relative std must be {self.input_size} finite values > 0")
        self.relative_std.copy_(std)

    @staticmethod
    def fit_input_stats(
        x: torch.Tensor, lengths: torch.Tensor | None = None, min_std: float = 1e-6
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-feature mean/std over the valid steps of x [B, T, F] (constant features: std 1)."""
        if lengths is not None:
            lengths = torch.as_tensor(lengths, dtype=torch.long)
        mask = _valid_mask(lengths, x.shape[0], x.shape[1], x.device)
        rows = x.reshape(-1, x.shape[-1]) if mask is None else x[mask]
        rows = rows.double()
        mean, std = rows.mean(0), rows.std(0, unbiased=False)
        std = torch.where(std < min_std, torch.ones_like(std), std)
        return mean.float(), std.float()

    # -- forward -----------------------------------------------------------------------------

    def _run(self, x: torch.Tensor, lengths: Any, trace: dict | None = None) -> dict:
        B, T = self._check_input(x)
        lengths = self._check_lengths(lengths, B, T)
        out = {} if trace is None else trace
        window, window_lengths = x, lengths  # the column encoder cuts its own part

        # 0. the part the LSTM reads: the last `steps` valid readings (the earlier ones are
        # context for the column encoder's baseline)
        x, lengths, start = last_steps(x, lengths, self.steps)
        out["read_start"], out["read_lengths"] = start, lengths
        T = x.shape[1]
        mask = _valid_mask(lengths, B, T, x.device)  # bool [B, T]; None = every step valid

        # 1. input normalisation (and the relative channels: valid steps come first, so
        # x[:, :1] is every row's first valid reading)
        x_raw = x
        if self.config["normalization"]["input_norm"]:
            x = (x - self.input_mean) / self.input_std
        if self.relative:
            x = torch.cat([x, (x_raw - x_raw[:, :1]) / self.relative_std], dim=-1)
        if self.signatures is not None:
            x = torch.cat([x, self.signatures(x_raw).to(x.dtype)], dim=-1)
        if self.input_bn is not None:
            if mask is None:
                x = self.input_bn(x.reshape(B * T, -1)).reshape(B, T, -1)
            else:  # statistics from the valid steps only; padding stays 0
                x = torch.zeros_like(x).masked_scatter(mask.unsqueeze(-1), self.input_bn(x[mask]))
        elif mask is not None and trace is not None:
            x = x * mask.unsqueeze(-1)  # tidy padding for the caller; the LSTM never sees it
        out["input"] = x

        # 2. LSTM, from an explicit zero state
        state = self.init_hidden(B, x.device, x.dtype)
        if lengths is None:
            lstm_out, (h_n, _) = self.lstm(x, state)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_out, (h_n, _) = self.lstm(packed, state)
            lstm_out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=T)
        out["lstm_out"] = lstm_out  # [B, T, D], zeros on padding

        # 3. pool the sequence to one vector per row
        # h_n: [layers * directions, B, H]; the last layer's forward state after its last
        # valid step, then (bidirectional) the backward state after reaching t = 0.
        summary = torch.cat(list(h_n[-self.num_directions :]), dim=-1)
        out["summary"] = summary
        if self.attn_proj is not None:
            scores = self.attn_score(torch.tanh(self.attn_proj(lstm_out))).squeeze(-1)  # [B, T]
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=1)
            out["attention"] = weights
            pooled = torch.bmm(weights.unsqueeze(1), lstm_out).squeeze(1)  # [B, D]
        else:
            pooled = summary
        out["pooled"] = pooled
        z = pooled
        if self.columns is not None:
            cols = self.columns(window, window_lengths).to(pooled.dtype)
            out["columns"] = cols
            z = torch.cat([pooled, cols], dim=-1)

        # 4. post-LSTM normalisation and the classifier head
        if self.post_ln is not None:
            z = self.post_ln(z)
        if self.post_bn is not None:
            z = self.post_bn(z)
        out["head_input"] = z
        for i, layer in enumerate(self.classifier):
            z = self.classifier_dropout(self.activation(layer(z)))
            out[f"classifier.{i}"] = z
        out["logits"] = self.head(z)
        return out

    def init_hidden(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero (h0, c0), each [layers * directions, batch, hidden]: every window starts fresh."""
        shape = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        h0 = torch.zeros(shape, device=device, dtype=dtype)
        return h0, torch.zeros_like(h0)

    def _check_input(self, x: torch.Tensor) -> tuple[int, int]:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"expected input [batch, time, {self.input_size}], got {list(x.shape)}"
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"empty input {list(x.shape)}")
        return x.shape[0], x.shape[1]

    @staticmethod
    def _check_lengths(lengths: Any, B: int, T: int) -> torch.Tensor | None:
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths, dtype=torch.long).flatten()
        if lengths.numel() != B:
            raise ValueError(f"lengths has {lengths.numel()} entries for a batch of {B}")
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(f"lengths must be in [1, {T}], got min {lo} max {hi}")
        return None if lo == T else lengths  # all full: the unpacked fast path

    # -- introspection -----------------------------------------------------------------------

    def get_attention_weights(self, x: torch.Tensor, lengths: Any = None) -> torch.Tensor:
        """[B, T] attention weights at the window's positions: sum to 1 over the steps the
        LSTM read, 0 on padding and on context readings before them (architecture.steps)."""
        if self.attn_proj is None:
            raise ModelConfigError("get_attention_weights: attention.enabled is off in this config")
        with torch.no_grad():
            out = self._run(x, lengths, trace={})
            return to_window_positions(out["attention"], out["read_start"], x.shape[1])

    def get_layer_outputs(self, x: torch.Tensor, lengths: Any = None) -> dict[str, torch.Tensor]:
        """Intermediate activations for feature extraction (no gradients).

        Keys: read_start, read_lengths (where the part the LSTM reads starts in each row and
        its lengths, [B] or None: see architecture.steps; T below is that part's length),
        input (normalised, [B,T,F]), lstm_out [B,T,D], summary (last-state read-out
        [B,D]), attention [B,T] (if enabled; ``streamer.model.steps.to_window_positions``
        maps it to the window), pooled [B,D] (attention sum or summary),
        columns [B,2H_c] (if columns.enabled), head_input (after layer/batch norm),
        classifier.0 ... classifier.{n-1}, logits.
        """
        with torch.no_grad():
            return self._run(x, lengths, trace={})

    def _encoder_modules(self) -> list[nn.Module]:
        return [
            m for m in (self.input_bn, self.lstm, self.attn_proj, self.attn_score, self.columns)
            if m is not None
        ]

    def _head_modules(self) -> list[nn.Module]:
        return [
            m for m in (self.post_ln, self.post_bn, *self.classifier, self.head) if m is not None
        ]

    def freeze_lstm(self) -> None:
        """Freeze the sequence encoder (input batch-norm, LSTM, attention scorer, column LSTM).

        Note: frozen batch-norm layers still update their running statistics in train mode.
        """
        for m in self._encoder_modules():
            m.requires_grad_(False)

    def freeze_classifier(self) -> None:
        """Freeze the head (post-LSTM norms, classifier layers, output layer)."""
        for m in self._head_modules():
            m.requires_grad_(False)

    def unfreeze(self) -> None:
        self.requires_grad_(True)

    def get_model_info(self) -> dict[str, Any]:
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        nbytes = sum(t.numel() * t.element_size() for t in (*self.parameters(), *self.buffers()))
        parts = {
            name: sum(p.numel() for p in m.parameters())
            for name, m in self.named_children()
            if sum(1 for _ in m.parameters())
        }
        return {
            "total_parameters": total,
            "trainable_parameters": trainable,
            "size_mb": round(nbytes / 2**20, 3),
            "parameters_by_module": parts,
            "output_names": list(default_output_names(self.num_outputs))
            if self.num_outputs in (1, len(DEFECT_TYPES))
            else None,
            "config": self.config,
        }


def _valid_mask(lengths: torch.Tensor | None, B: int, T: int, device: Any) -> torch.Tensor | None:
    if lengths is None:
        return None
    return torch.arange(T, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)


def read_steps(config: dict[str, Any]) -> int:
    """Readings of a full window that the main LSTM reads (architecture.steps, else all)."""
    return int(config["architecture"].get("steps") or config["data"]["window"])


def count_parameters(config: dict[str, Any]) -> int:
    """Parameters of the model a config builds (builds it on CPU)."""
    return sum(p.numel() for p in SteelDefectLSTM(config).parameters())


__all__ = [
    "ModelConfig",
    "ModelConfigError",
    "SteelDefectLSTM",
    "count_parameters",
    "default_config",
    "default_output_names",
    "load_model_config",
    "validate_config",
]
