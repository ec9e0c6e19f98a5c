"""``streamer evaluate``: held-out heats -> window and event metrics, model and two baselines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from streamer.evaluation.gbt_training import DEFAULT_MAX_WINDOWS, DEFAULT_STRIDE


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="Checkpoint (default: the shipped streamer/model/default/model.pt).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Held-out heat folder (caster-sim generate) with a seed the model never saw.")
@click.option("--simulate", is_flag=True, help="Simulate the held-out heats here (needs --seed).")
@click.option("--seed", type=int, default=None, help="Simulator seed of the held-out heats.")
@click.option("--sim-config", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("configs/sim/default.yaml"), show_default=True,
              help="Simulator settings for --simulate (and the GBT training heats).")
@click.option("--casters", type=int, default=None, help="--simulate: number of casters.")
@click.option("--strands", type=int, default=None, help="--simulate: strands per caster.")
@click.option("--hours", type=float, default=None, help="--simulate: hours per strand.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports/eval"), show_default=True,
              help="Folder for report.json and the PNG figures.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None,
              help="One alarm threshold for every type and system. Default: the model's "
                   "thresholds as the daemon resolves them (alerts.alarm_by_type > the "
                   "checkpoint's operating_thresholds > alerts.alarm, 0.8); the baselines "
                   "use alerts.alarm.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="The daemon's YAML config (and STREAMER_* environment, as the daemon reads "
                   "them): its alerts section replaces the default alert settings.")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Also score the rule system and gradient-boosted trees.")
@click.option("--gbt-train-data", type=click.Path(path_type=Path), default=None,
              help="Heat folder to train the trees on (default: simulate --gbt-train-seed).")
@click.option("--gbt-train-seed", type=int, default=None,
              help="Simulate the GBT training heats with the held-out sim config and this "
                   "seed (default: the model's own simulated training heats as recorded in "
                   "the checkpoint, else its training seed, else 0); never the held-out seed.")
@click.option("--gbt-stride", type=int, default=DEFAULT_STRIDE, show_default=True,
              help="Train the trees on every N-th window ...")
@click.option("--gbt-max-windows", type=int, default=DEFAULT_MAX_WINDOWS, show_default=True,
              help="... or a larger stride so that at most this many are used (0 = no cap).")
@click.option("--baseline-thresholds", "baseline_files", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A baseline's own per-type alarm thresholds: the JSON record of "
                   "`python -m streamer.evaluation.thresholds --system gbt|rules --json FILE`, "
                   "chosen on development heats (repeat for both baselines). Default: "
                   "alerts.alarm for every type.")
@click.option("--min-fill", type=int, default=60, show_default=True,
              help="Readings a window needs before it is scored (the daemon's buffer.min_fill).")
@click.option("--batch", type=int, default=512, show_default=True, help="Windows per model call.")
@click.option("--threads", type=int, default=1, show_default=True,
              help="Threads for torch and the trees (0 = the libraries' defaults). On a busy "
                   "machine more threads than free cores is many times slower.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def evaluate(model_path: Path | None, data_dir: Path | None, simulate: bool, seed: int | None,
             sim_config: Path, casters: int | None, strands: int | None, hours: float | None,
             out_dir: Path, threshold: float | None, config_file: Path | None,
             baselines: bool, gbt_train_data: Path | None,
             gbt_train_seed: int | None, gbt_stride: int, gbt_max_windows: int,
             baseline_files: tuple[Path, ...], min_fill: int, batch: int,
             threads: int, quiet: bool) -> None:
    """Evaluate a checkpoint on held-out heats against a rule system and boosted trees.

    \b
    Window level: ROC-AUC and PR-AUC per defect type and for any defect.
    Event level (alarms through the daemon's hysteresis and repeat suppression):
    detection rate, false alarms per strand-day (and by hard negative), lead time.
    Writes OUT/report.json and OUT/*.png; docs/evaluation.md defines every number.

    \b
    Examples:
      streamer evaluate --simulate --seed 9101 --out reports/eval
      streamer evaluate --model model.pt --data data/heldout --gbt-train-data data/train
    """
    import json
    import platform
    import time
    from datetime import UTC, datetime

    if (data_dir is None) == (not simulate):
        raise click.UsageError("give exactly one of --data DIR or --simulate --seed N")
    if simulate and seed is None:
        raise click.UsageError("--simulate needs --seed N (a seed the model never saw)")
    if data_dir is not None and any(v is not None for v in (seed, casters, strands, hours)):
        raise click.UsageError("--seed/--casters/--strands/--hours apply to --simulate only")
    if gbt_train_data is not None and gbt_train_seed is not None:
        raise click.UsageError("give at most one of --gbt-train-data and --gbt-train-seed")
    if baseline_files and not baselines:
        raise click.UsageError("--baseline-thresholds needs the baselines (drop --no-baselines)")
    if baseline_files and threshold is not None:
        raise click.UsageError("--threshold sets one threshold for every system; give it or "
                               "--baseline-thresholds, not both")
    if gbt_stride < 1 or batch < 1 or min_fill < 1 or gbt_max_windows < 0:
        raise click.UsageError("--gbt-stride, --batch and --min-fill must be >= 1, "
                               "--gbt-max-windows >= 0")

    t_start = time.perf_counter()
    import torch

    from simulators.caster.config import ConfigError
    from simulators.heatfile import HeatFileError, read_heats
    from streamer import __version__
    from streamer.evaluation.data import SeedLeakError, check_heldout_seed, training_seeds
    from streamer.evaluation.gbt_training import manifest_seed
    from streamer.json_file import json_default
    from streamer.model.checkpoint import CheckpointError, load_checkpoint

    if threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(threads)  # OpenMP/BLAS pools of scikit-learn and numpy
    progress = not quiet
    timings: dict[str, float] = {}

    def fail(msg: str) -> None:
        raise click.ClickException(msg)

    # -- model -----------------------------------------------------------------------------
    from streamer.model.shipped import default_model_path

    path = model_path or default_model_path()
    if model_path is None and not path.is_file():
        fail(f"no shipped model at {path}; pass --model CHECKPOINT")
    try:
        loaded = load_checkpoint(path)
    except CheckpointError as exc:
        fail(str(exc))
    train_seeds = sorted(training_seeds(loaded.metadata))

    # -- alarm thresholds: the daemon's resolution unless --threshold ---------------------------
    from streamer.alarm.thresholds import ThresholdError, resolve_thresholds
    from streamer.config import AlertSettings, load_settings
    from streamer.config import ConfigError as SettingsError

    try:
        alerts = load_settings(config_file).alerts if config_file is not None else AlertSettings()
        base_threshold = threshold if threshold is not None else alerts.alarm
        model_thresholds = resolve_thresholds(alerts, loaded.defect_types, loaded.metadata,
                                              override=threshold)
    except (SettingsError, ThresholdError) as exc:
        fail(str(exc))
    from streamer.evaluation.thresholds import chosen_seeds, load_baseline_thresholds

    baseline_thresholds: dict[str, Any] = {}
    baseline_records: dict[str, dict[str, Any]] = {}
    for file in baseline_files:
        try:
            name, resolved, rec = load_baseline_thresholds(str(file), loaded.defect_types,
                                                           alerts)
        except ThresholdError as exc:
            fail(str(exc))
        if name in baseline_thresholds:
            fail(f"--baseline-thresholds: two records for {name}")
        baseline_thresholds[name], baseline_records[name] = resolved, {**rec, "file": str(file)}

    # -- held-out heats ----------------------------------------------------------------------
    if simulate:  # refuse before spending time on the simulation
        try:
            check_heldout_seed(seed, loaded.metadata)
        except SeedLeakError as exc:
            fail(str(exc))
    t0 = time.perf_counter()
    sim_overrides: dict[str, Any] = {}
    sim_cfg: dict[str, Any] | None = None
    try:
        if data_dir is not None:
            heldout = read_heats(data_dir)
            heldout_seed = manifest_seed(heldout.manifest)
            if isinstance(heldout.manifest.get("config"), dict):
                sim_cfg = heldout.manifest["config"]
        else:
            from simulators.caster import generate, load_config

            for key, val in (("casters", casters), ("strands_per_caster", strands),
                             ("hours", hours)):
                if val is not None:
                    sim_overrides[key] = val
            cfg = load_config(sim_config, **sim_overrides, seed=seed)
            sim_cfg = cfg.model_dump(mode="json")
            heldout = generate(cfg)
            heldout_seed = seed
    except (HeatFileError, ConfigError) as exc:
        fail(str(exc))
    timings["load_heldout_s"] = time.perf_counter() - t0
    try:
        warnings = check_heldout_seed(heldout_seed, loaded.metadata)
    except SeedLeakError as exc:
        fail(str(exc))
    model_seeds = chosen_seeds((loaded.metadata.get("operating_thresholds") or {}).get("chosen_on"))
    if threshold is None and heldout_seed is not None and heldout_seed in model_seeds:
        warnings.append(f"the checkpoint's operating thresholds were chosen on seed "
                        f"{heldout_seed}: these heats are not held out for them")
    for name, rec in baseline_records.items():
        if heldout_seed is not None and heldout_seed in chosen_seeds(rec.get("chosen_on")):
            warnings.append(f"the {name} thresholds of {rec['file']} were chosen on seed "
                            f"{heldout_seed}: these heats are not held out for them")
    for w in warnings:
        click.echo(f"warning: {w}", err=True)

    missing = [c for c in loaded.channels if c not in heldout.channels]
    if missing:
        fail(f"held-out heats lack the model's channels {missing[:6]}")
    known = set(heldout.manifest.get("defect_types") or ("sticker", "crack", "slag"))
    unknown = [t for t in loaded.defect_types if t not in known]
    if unknown:
        fail(f"the model's outputs {unknown} are not defect types of the heat set "
             f"({sorted(known)}): event scoring needs per-type outputs")
    if min_fill > loaded.window:
        fail(f"--min-fill {min_fill} exceeds the model window {loaded.window}")

    # -- GBT baseline ------------------------------------------------------------------------
    gbt = None
    gbt_source: dict[str, Any] | None = None
    if baselines:
        from streamer.evaluation.gbt_training import (
            GbtSourceError,
            fingerprint_differences,
            fit_gbt,
            gbt_training_heats,
        )

        t0 = time.perf_counter()
        try:
            source = gbt_training_heats(loaded.metadata, heldout_seed=heldout_seed,
                                        heldout_sim_config=sim_cfg, data_dir=gbt_train_data,
                                        seed=gbt_train_seed)
            gbt = fit_gbt(loaded, source, min_fill, stride=gbt_stride,
                          max_windows=gbt_max_windows or None, threads=threads or None,
                          progress=progress)
        except GbtSourceError as exc:
            fail(str(exc))
        gbt_source = source.source
        timings["gbt_train_s"] = time.perf_counter() - t0
        if "gbt" in baseline_records:
            rec = baseline_records["gbt"]
            differ = fingerprint_differences(rec.get("gbt_train"), gbt.train_info)
            if differ:
                fail(f"{rec['file']}: its gbt thresholds were chosen for other trees than "
                     f"these (they differ in {', '.join(differ)}); choose them again with the "
                     "same --gbt-* options")

    # -- evaluate ----------------------------------------------------------------------------
    if progress:
        click.echo(f"model alarm thresholds: {model_thresholds.describe()}", err=True)
    from streamer.evaluation.report import evaluate_heats, format_table

    t0 = time.perf_counter()
    try:
        ev = evaluate_heats(heldout, defect_types=loaded.defect_types, channels=loaded.channels,
                            window=loaded.window, loaded=loaded, gbt=gbt, rules=baselines,
                            threshold=base_threshold, min_fill=min_fill, batch=batch,
                            progress=progress, model_thresholds=model_thresholds,
                            alerts=alerts, baseline_thresholds=baseline_thresholds)
    except ValueError as exc:
        fail(str(exc))
    timings["evaluate_s"] = time.perf_counter() - t0

    # -- write -------------------------------------------------------------------------------
    from streamer.evaluation.plots import (
        plot_curves,
        plot_lead_times,
        plot_operating_points,
        plot_traces,
    )

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--out {out_dir}: cannot create ({exc.strerror})")
    t0 = time.perf_counter()
    plots = [plot_curves(ev, out_dir / "curves.png")]
    if "sticker" in ev.defect_types:
        plots.append(plot_lead_times(ev, out_dir / "lead_time_sticker.png"))
    plots.append(plot_operating_points(ev, out_dir / "operating_points.png", base_threshold))
    tr = plot_traces(ev, out_dir / "traces.png", base_threshold)
    if tr is not None:
        plots.append(tr)
    timings["plots_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start

    if data_dir is not None:
        rerun = ["streamer", "evaluate", "--model", str(path), "--data", str(data_dir)]
    else:
        rerun = ["streamer", "evaluate", "--model", str(path), "--simulate", "--seed", str(seed),
                 "--sim-config", str(sim_config)]
        for flag, val in (("--casters", casters), ("--strands", strands), ("--hours", hours)):
            if val is not None:
                rerun += [flag, str(val)]
    rerun += ["--out", str(out_dir), "--min-fill", str(min_fill)]
    if threshold is not None:
        rerun += ["--threshold", str(threshold)]
    if config_file is not None:
        rerun += ["--config", str(config_file)]
    for file in baseline_files:
        rerun += ["--baseline-thresholds", str(file)]
    if not baselines:
        rerun.append("--no-baselines")
    elif gbt_train_data is not None:
        rerun += ["--gbt-train-data", str(gbt_train_data), "--gbt-stride", str(gbt_stride),
                  "--gbt-max-windows", str(gbt_max_windows)]
    else:
        if gbt_train_seed is not None:
            rerun += ["--gbt-train-seed", str(gbt_train_seed)]
        rerun += ["--gbt-stride", str(gbt_stride), "--gbt-max-windows", str(gbt_max_windows)]

    counts = dict(ev.counts)
    alert = counts.pop("alert_settings")
    report = {
        "format": "streamer-evaluation", "version": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "streamer_version": __version__,
        "command": " ".join(["streamer", "evaluate", *sys.argv[2:]])
        if len(sys.argv) > 1 and sys.argv[1] == "evaluate" else None,
        "rerun": " ".join(rerun),
        "model": {"path": str(path), "model_id": loaded.model_id, "window": loaded.window,
                  "channels": loaded.channels, "defect_types": loaded.defect_types,
                  "metadata": loaded.metadata},
        "data": {
            "source": str(data_dir) if data_dir is not None else "simulate",
            "seed": heldout_seed,
            "sim_config_file": str(sim_config) if simulate else None,
            "sim_overrides": sim_overrides or None,
            "sim_config": sim_cfg,
            "hz": ev.hz,
            "generator_version": heldout.manifest.get("generator_version"),
        },
        "seed_check": {"heldout_seed": heldout_seed, "training_seeds": train_seeds,
                       "gbt_train_seed": gbt_source["seed"] if gbt_source else None,
                       "warnings": warnings},
        "defect_types": ev.defect_types,
        "settings": {"threshold": base_threshold, "threshold_explicit": threshold is not None,
                     "model_alarm_thresholds": model_thresholds.as_dict(),
                     "baseline_alarm_thresholds": {
                         name: {**baseline_thresholds[name].as_dict(), "file": rec["file"],
                                "chosen_on": rec.get("chosen_on"), "rule": rec.get("rule")}
                         for name, rec in baseline_records.items()},
                     "config_file": str(config_file) if config_file is not None else None,
                     "min_fill": min_fill, "hop": 1,
                     "window": loaded.window, "alert_settings": alert},
        "counts": counts,
        "systems": {name: res.report for name, res in ev.systems.items()},
        "plots": [p.name for p in plots],
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "host": {"python": platform.python_version(), "torch": torch.__version__,
                 "torch_threads": torch.get_num_threads(), "cpus": _cpus()},
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=json_default))
    click.echo(format_table(report))
    click.echo(f"wrote {out_dir / 'report.json'} and {', '.join(p.name for p in plots)} "
               f"in {timings['total_s']:.0f} s")


def _cpus() -> int | None:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()
