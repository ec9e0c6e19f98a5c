"""Several SteelDefectLSTMs read as one model: its probability the mean (or the max) of theirs.

Why: single training runs of one recipe differ a lot in where they raise confident false
alarms (on the development heats, 2-9 false alarms among five runs, most of which catch
every event), while a defect drives every run up together. Averaging the members' calibrated
probabilities keeps the defects and thins out each run's own mistakes (docs/training.md,
"An ensemble of runs"). The cost is one forward pass per member.

``combine="max"`` takes the largest member probability per type instead: it keeps what *any*
member sees, where runs miss different events, and adds every member's false alarms, so its
thresholds are chosen for it like the mean's (docs/training.md, "The largest member's
probability"). The combination is part of the ensemble's id.

The ensemble has the interface the daemon, the evaluation and the CLI use:
``model(x, lengths)`` returns logits (the logit of the combined probability, so a sigmoid
gives it back), ``get_layer_outputs`` the first member's trace (explanations: attention and
inputs) with the ensemble's logits, and ``input_sources`` for folding explanations onto
channels. Members must share the window, the channels and the outputs; they may differ in
anything else (recipe, training seed, architecture).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from streamer.model.lstm import LogitModel, ModelConfigError, SteelDefectLSTM

_EPS = 1e-7  # keeps the logit of the combined probability finite (|logit| <= 16.1)
COMBINE = ("mean", "max")  # how members' probabilities make the ensemble's


def check_combine(combine: Any) -> str:
    """``combine`` if it is one of COMBINE, else ModelConfigError naming the choices."""
    if combine not in COMBINE:
        raise ModelConfigError(f"ensemble combine must be one of {', '.join(COMBINE)}, "
                               f"got {combine!r}")
    return combine


def combine_probabilities(p: torch.Tensor, combine: str) -> torch.Tensor:
    """[M, ...] member probabilities -> [...] the ensemble's, by ``combine`` (COMBINE)."""
    return p.mean(0) if check_combine(combine) == "mean" else p.amax(0)


class DefectEnsemble(LogitModel):
    def __init__(self, members: Sequence[SteelDefectLSTM], combine: str = "mean"):
        super().__init__()
        check_combine(combine)
        if len(members) < 2:
            raise ModelConfigError(f"an ensemble needs at least 2 members, got {len(members)}")
        first = members[0].config
        for i, m in enumerate(members[1:], start=1):
            for key, a, b in (("data.window", first["data"]["window"], m.config["data"]["window"]),
                              ("data.channels", first["data"]["channels"],
                               m.config["data"]["channels"]),
                              ("output.num_outputs", first["output"]["num_outputs"],
                               m.config["output"]["num_outputs"])):
                if a != b:
                    raise ModelConfigError(f"ensemble member {i}: {key} differs from member 0's")
        self.members = nn.ModuleList(members)
        self.combine = combine
        self.config = first  # what callers read: window, channels, read steps, outputs
        self.num_outputs: int = members[0].num_outputs
        self.input_size: int = members[0].input_size

    @property
    def input_sources(self) -> torch.Tensor:
        return self.members[0].input_sources

    def _run(self, x: torch.Tensor, lengths: Any, trace: dict | None = None) -> dict:
        out = self.members[0]._run(x, lengths, trace)
        logits = [out["logits"]] + [m(x, lengths) for m in self.members[1:]]
        stacked = torch.stack(logits)  # [M, B, K]
        p = combine_probabilities(torch.sigmoid(stacked.float()), self.combine)
        p = p.clamp(_EPS, 1 - _EPS)
        out["member_logits"] = stacked
        out["logits"] = torch.logit(p).to(stacked.dtype)
        return out

    def get_layer_outputs(self, x: torch.Tensor, lengths: Any = None) -> dict[str, torch.Tensor]:
        """The first member's layer outputs, with ``logits`` the ensemble's and
        ``member_logits`` [M, B, K] every member's."""
        with torch.no_grad():
            return self._run(x, lengths, trace={})

    def get_attention_weights(self, x: torch.Tensor, lengths: Any = None) -> torch.Tensor:
        """The first member's attention weights (what the explanations show)."""
        return self.members[0].get_attention_weights(x, lengths)

    def get_model_info(self) -> dict[str, Any]:
        infos = [m.get_model_info() for m in self.members]
        total = sum(i["total_parameters"] for i in infos)
        return {
            "total_parameters": total,
            "trainable_parameters": sum(i["trainable_parameters"] for i in infos),
            "size_mb": round(sum(i["size_mb"] for i in infos), 3),
            "parameters_by_module": {f"member{k}": i["total_parameters"]
                                     for k, i in enumerate(infos)},
            "output_names": infos[0]["output_names"],
            "members": len(infos),
            "combine": self.combine,
            "config": self.config,
        }
