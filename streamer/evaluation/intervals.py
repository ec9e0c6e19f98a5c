"""Exact 95 % confidence intervals for the event numbers a report prints.

A held-out report has a few hundred events and a handful of false alarms: 5 false alarms in
8 strand-days and 17 in 8 are both consistent with a true rate near 1 per strand-day, and a
reader comparing a figure with the bar (<= 1 false alarm per strand-day, >= 95 % of
stickers) needs to see that. Exact (conservative) intervals, from scipy:

- a count over an exposure (false alarms per strand-day): Garwood's Poisson interval;
- a proportion (detection rate): Clopper-Pearson.
"""

from __future__ import annotations

LEVEL = 0.95


def poisson_rate_ci(count: int, exposure: float, level: float = LEVEL
                    ) -> tuple[float, float] | None:
    """(lower, upper) of a Poisson rate ``count / exposure``; None without exposure."""
    from scipy.stats import chi2

    if exposure <= 0:
        return None
    a = 1.0 - level
    lo = 0.0 if count == 0 else float(chi2.ppf(a / 2, 2 * count)) / 2
    hi = float(chi2.ppf(1 - a / 2, 2 * count + 2)) / 2
    return lo / exposure, hi / exposure


def proportion_ci(successes: int, trials: int, level: float = LEVEL
                  ) -> tuple[float, float] | None:
    """(lower, upper) of a binomial proportion; None without trials."""
    from scipy.stats import binomtest

    if trials <= 0:
        return None
    ci = binomtest(successes, trials).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)
