"""Window-level ranking metrics: ROC-AUC, average precision and their curves.

Definitions (the same as scikit-learn's ``roc_auc_score`` / ``average_precision_score``):

- sort the windows by score, highest first; every *distinct* score value is a threshold
  (windows with equal scores enter together);
- at a threshold, TP / FP = positives / negatives scoring >= it;
  TPR (recall) = TP / P, FPR = FP / N, precision = TP / (TP + FP);
- **ROC-AUC** = trapezoidal area under (FPR, TPR) from (0, 0) to (1, 1). It equals the
  probability that a random positive scores above a random negative, ties counting 1/2;
- **average precision (PR-AUC)** = sum over thresholds of (R_n - R_{n-1}) * P_n (a step
  function, no interpolation), starting from recall 0.

Both are undefined (None) when the labels hold only one class.
"""

from __future__ import annotations

import numpy as np


def _counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds desc, cumulative TP, cumulative FP) at each distinct score."""
    y = np.asarray(y).astype(bool).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in shape")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return s[last], tp, fp


def roc_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) starting at (0, 0); ValueError if only one class."""
    thr, tp, fp = _counts(y, s)
    P, N = (tp[-1], fp[-1]) if len(tp) else (0, 0)
    if P == 0 or N == 0:
        raise ValueError("ROC needs both positive and negative labels")
    return np.r_[0.0, fp / N], np.r_[0.0, tp / P], np.r_[np.inf, thr]


def pr_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds), thresholds descending; ValueError without positives."""
    thr, tp, fp = _counts(y, s)
    if not len(tp) or tp[-1] == 0:
        raise ValueError("precision-recall needs positive labels")
    return tp / (tp + fp), tp / tp[-1], thr


def roc_auc(y: np.ndarray, s: np.ndarray) -> float | None:
    try:
        fpr, tpr, _ = roc_curve(y, s)
    except ValueError as exc:
        if "both" in str(exc):
            return None
        raise
    return float(np.trapezoid(tpr, fpr))


def average_precision(y: np.ndarray, s: np.ndarray) -> float | None:
    try:
        precision, recall, _ = pr_curve(y, s)
    except ValueError as exc:
        if "positive" in str(exc):
            return None
        raise
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def thin_curve(x: np.ndarray, y: np.ndarray, max_points: int = 2000
               ) -> tuple[np.ndarray, np.ndarray]:
    """At most ~max_points points of a curve for plotting (first and last kept)."""
    if len(x) <= max_points:
        return x, y
    idx = np.unique(np.r_[np.linspace(0, len(x) - 1, max_points).astype(int), len(x) - 1])
    return x[idx], y[idx]


def window_metrics(labels: np.ndarray, scores: np.ndarray, defect_types: list[str] | tuple[str, ...]
                   ) -> dict[str, dict[str, float | int | None]]:
    """Per type and "any" (label: any type positive; score: max over types)."""
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if labels.shape != scores.shape or labels.ndim != 2 or labels.shape[1] != len(defect_types):
        raise ValueError(f"labels {labels.shape} / scores {scores.shape} do not match "
                         f"{len(defect_types)} defect types")
    out: dict[str, dict[str, float | int | None]] = {}
    cols = [(t, labels[:, k], scores[:, k]) for k, t in enumerate(defect_types)]
    cols.append(("any", labels.max(1) if len(labels) else labels[:, 0],
                 scores.max(1) if len(scores) else scores[:, 0]))
    for name, y, s in cols:
        pos = int(np.count_nonzero(y))
        out[name] = {"windows": int(len(y)), "positives": pos,
                     "roc_auc": roc_auc(y, s), "average_precision": average_precision(y, s)}
    return out
