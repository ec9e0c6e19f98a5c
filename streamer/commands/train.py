"""``streamer train``: train the defect model on heat folders or on freshly simulated heats.

torch, numpy and the simulator are imported inside the command so that ``streamer --help``
stays fast.
"""

from __future__ import annotations

import sys

import click


def _fail(msg: str, code: int = 2) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(code)


@click.command()
@click.option("--data", "data_dirs", multiple=True, type=click.Path(path_type=str),
              help="Heat folder from `caster-sim generate` (repeatable).")
@click.option("--simulate", is_flag=True, help="Simulate the training heats instead of --data.")
@click.option("--sim-config", type=click.Path(dir_okay=False, path_type=str),
              default="configs/sim/default.yaml", show_default=True,
              help="Simulator settings for --simulate.")
@click.option("--sim-seed", "--data-seed", "sim_seed", type=int,
              help="Simulator seed for --simulate (default: the sim config's).")
@click.option("--strands", type=int, help="Strands per caster for --simulate.")
@click.option("--hours", type=float, help="Hours per strand for --simulate.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="Checkpoint file to write.")
@click.option("--model-config", type=click.Path(dir_okay=False, path_type=str),
              help="Model config YAML (default: the built-in default == "
                   "configs/model/default.yaml).")
@click.option("--config", "train_config", type=click.Path(dir_okay=False, path_type=str),
              help="Training config YAML (configs/train/default.yaml); flags override it.")
@click.option("--epochs", type=int, help="Epochs at most.")
@click.option("--max-minutes", type=float, help="Stop after this wall time (0 = no limit).")
@click.option("--batch-size", type=int, help="Windows per batch.")
@click.option("--windows-per-epoch", type=int, help="Windows drawn per epoch.")
@click.option("--lr", type=float, help="AdamW learning rate.")
@click.option("--seed", type=int, help="Seed of weights, sampling and the heat split.")
@click.option("--val-fraction", type=float, help="Share of heats held out for validation.")
@click.option("--patience", type=int, help="Early-stopping patience in epochs.")
@click.option("--keep", type=click.Choice(["best", "last"]),
              help="Keep the best epoch's weights (early stopping) or the last epoch's.")
@click.option("--ema-decay", type=float,
              help="Keep and save a moving average of the weights with this decay per step.")
@click.option("--members", type=int,
              help="Train this many runs (seeds seed, seed+1, ...) and save them as one ensemble.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Training device.")
@click.option("--threads", type=int, help="torch CPU threads (0 = torch default).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=str),
              help="Also write the metadata (metrics, split, history) as JSON here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(data_dirs: tuple[str, ...], simulate: bool, sim_config: str, sim_seed: int | None,
          strands: int | None, hours: float | None, out: str, model_config: str | None,
          train_config: str | None, epochs: int | None, max_minutes: float | None,
          batch_size: int | None, windows_per_epoch: int | None, lr: float | None,
          seed: int | None, val_fraction: float | None, patience: int | None,
          keep: str | None, ema_decay: float | None, members: int | None, device: str | None,
          threads: int | None, report: str | None, quiet: bool) -> None:
    """Train the defect model; validation heats are split off by heat.

    \b
    Examples:
      streamer train --simulate --sim-seed 11 --out model.pt
      caster-sim generate --out data/train --config configs/sim/default.yaml --seed 11
      streamer train --data data/train --config configs/train/default.yaml --out model.pt
    """
    import json
    import shlex
    from pathlib import Path

    if bool(data_dirs) == simulate:
        _fail("give either --data DIR (repeatable) or --simulate")
    if not simulate and any(v is not None for v in (sim_seed, strands, hours)):
        _fail("--sim-seed/--strands/--hours only apply with --simulate")

    from simulators.caster.config import ConfigError
    from simulators.heatfile import HeatFileError
    from streamer.model.lstm import ModelConfigError, default_config, load_model_config
    from streamer.training.data import load_sources
    from streamer.training.train import TrainConfigError, load_train_config, run

    try:
        cfg = load_train_config(train_config, epochs=epochs, max_minutes=max_minutes,
                                batch_size=batch_size, windows_per_epoch=windows_per_epoch,
                                lr=lr, seed=seed, val_fraction=val_fraction, ema_decay=ema_decay,
                                members=members, device=device,
                                threads=threads,
                                **{"early_stopping.patience": patience,
                                   "early_stopping.keep": keep})
    except TrainConfigError as exc:
        _fail(str(exc))
    try:
        mc = load_model_config(model_config) if model_config else default_config()
    except ModelConfigError as exc:
        _fail(str(exc))
    out_path = Path(out)
    if out_path.parent and not out_path.parent.exists():
        _fail(f"--out {out}: folder {out_path.parent} does not exist")

    overrides = {k: v for k, v in (("seed", sim_seed), ("strands_per_caster", strands),
                                   ("hours", hours)) if v is not None}
    try:
        sources = load_sources(data_dirs, simulate=simulate,
                               sim_config=sim_config if simulate else None,
                               sim_overrides=overrides)
    except HeatFileError as exc:
        _fail(f"cannot read training data: {exc}", 1)
    except ConfigError as exc:
        _fail(f"--sim-config: {exc}")

    log = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))  # noqa: E731
    command = "streamer " + " ".join(shlex.quote(a) for a in sys.argv[1:]) \
        if sys.argv and Path(sys.argv[0]).name in ("streamer", "__main__.py") else None
    try:
        model_id, res = run(sources, mc, cfg, out_path, command=command,
                            progress=not quiet and sys.stderr.isatty(), log=log,
                            extra_metadata={"git": _git_state()})
    except (TrainConfigError, ValueError, RuntimeError) as exc:
        _fail(str(exc), 1)
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}", 1)
    m = res.metadata
    if report:
        Path(report).write_text(json.dumps(m, indent=2, default=str) + "\n")
    runs = m.get("members")  # an ensemble's: each run's training metadata
    if runs:
        click.echo(f"wrote {out} (ensemble {model_id} of {len(runs)} runs): "
                   f"{m['wall_time_s']:.0f} s")
        for k, mm in enumerate(runs):
            click.echo(f" member {k + 1} (seed {mm['split']['seed']}, model {mm['model_id']}):")
            _echo_run(mm, res.defect_types)
    else:
        click.echo(f"wrote {out} (model {model_id}):")
        _echo_run(m, res.defect_types)


def _echo_run(m: dict, defect_types: list[str]) -> None:
    """One training run's summary: epochs, validation metrics and events."""
    kept = m.get("kept_epoch", m["best_epoch"])
    which = f"best {m['best_epoch']}" if kept == m["best_epoch"] else \
        f"kept {kept} (best {m['best_epoch']})"
    click.echo(f"  {m['epochs_run']} epochs, {which} ({m['stopped']}), {m['wall_time_s']:.0f} s")
    vm = m["val_metrics"]
    for t in [*defect_types, "any"]:
        if t in vm and "roc_auc" in vm[t]:
            click.echo(f"  val {t:8s} ROC-AUC {vm[t]['roc_auc']:.4f}  PR-AUC {vm[t]['pr_auc']:.4f}"
                       f"  ({vm[t]['positives']} positive windows)")
    ev = m.get("val_events")
    if ev:
        for t, s in ev["by_type"].items():
            lead = s["lead_time_median_s"]
            click.echo(f"  val {t:8s} events caught {s['caught']}/{s['caught'] + s['missed']}"
                       f", median lead {'-' if lead is None else f'{lead:.0f} s'}"
                       f", false alarms {s['false_alarms']}")
        click.echo(f"  val false alarms per strand-day {ev['false_alarms_per_strand_day']:.2f}"
                   f" ({ev['strand_days']:.2f} strand-days)")


def _git_state() -> dict | None:
    """Commit and dirty flag of the source tree, when it is a git checkout."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--",
                                "simulators", "streamer/training", "streamer/model"],
                               capture_output=True, text=True, timeout=5)
        return {"commit": rev.stdout.strip(),
                "dirty_paths": [ln[3:] for ln in dirty.stdout.splitlines()]}
    except (OSError, subprocess.SubprocessError):
        return None
