"""``streamer model``: inspect a model config or checkpoint, and measure inference speed.

torch is imported inside the commands so that ``streamer --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


def _is_config(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def _build(config_path: Path | None, checkpoint_path: Path | None):
    """(model, window, label) from a config, a checkpoint, or the built-in default config."""
    from streamer.model.checkpoint import CheckpointError, load_checkpoint
    from streamer.model.lstm import (
        ModelConfigError,
        SteelDefectLSTM,
        default_config,
        load_model_config,
    )

    try:
        if checkpoint_path is not None:
            loaded = load_checkpoint(checkpoint_path)
            return loaded.model, loaded.window, f"checkpoint {checkpoint_path} ({loaded.model_id})"
        config = load_model_config(config_path) if config_path else default_config()
        label = f"config {config_path}" if config_path else "built-in default config"
        return SteelDefectLSTM(config).eval(), config["data"]["window"], label
    except (CheckpointError, ModelConfigError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def model() -> None:
    """Inspect model configs and checkpoints; measure inference speed."""


@model.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the info as JSON.")
def info(path: Path, as_json: bool) -> None:
    """Parameters, size and config of a checkpoint or a model config (.yaml)."""
    if _is_config(path):
        mdl, window, label = _build(path, None)
        extra: dict = {"source": label, "window": window}
    else:
        from streamer.model.checkpoint import CheckpointError, load_checkpoint

        try:
            loaded = load_checkpoint(path)
        except CheckpointError as exc:
            raise click.ClickException(str(exc)) from None
        mdl = loaded.model
        extra = {
            "source": f"checkpoint {path}",
            "model_id": loaded.model_id,
            "window": loaded.window,
            "channels": loaded.channels,
            "defect_types": loaded.defect_types,
            "metadata": loaded.metadata,
        }
    result = {**extra, **mdl.get_model_info()}
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    arch = result["config"]["architecture"]
    click.echo(f"source:      {result['source']}")
    if "model_id" in result:
        click.echo(f"model id:    {result['model_id']}")
    click.echo(
        f"lstm:        {arch['num_layers']} layer(s) x {arch['hidden_size']} hidden, "
        f"{'bidirectional' if arch['bidirectional'] else 'unidirectional'}, "
        f"input {arch['input_size']}"
    )
    click.echo(f"attention:   {'on' if result['config']['attention']['enabled'] else 'off'}")
    col = result["config"].get("columns", {})
    columns = f"on, {col['hidden_size']} hidden" if col.get("enabled") else "off"
    click.echo(f"columns:     {columns}")
    norm = [k for k, v in result["config"]["normalization"].items() if v]
    click.echo(f"norms:       {', '.join(norm) or 'none'}")
    if "members" in result:
        click.echo(f"members:     {result['members']} (mean probability; the first shown)")
    click.echo(f"window:      {result['window']}")
    click.echo(
        f"outputs:     {result['config']['output']['num_outputs']}"
        + (f" {result['defect_types']}" if "defect_types" in result else "")
    )
    click.echo(
        f"parameters:  {result['total_parameters']:,} "
        f"({result['trainable_parameters']:,} trainable), {result['size_mb']} MB"
    )
    for name, n in result["parameters_by_module"].items():
        click.echo(f"  {name:<12} {n:>10,}")
    if result.get("metadata"):
        click.echo(f"metadata:    {json.dumps(result['metadata'], default=str)}")


@model.command()
@click.argument("members", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Ensemble checkpoint to write.")
@click.option("--combine", type=click.Choice(["mean", "max"]), default="mean", show_default=True,
              help="The ensemble's probability of a type: the mean of the members' or the "
                   "largest.")
def ensemble(members: tuple[Path, ...], out: Path, combine: str) -> None:
    """Join checkpoints of one window, channel list and outputs into one ensemble checkpoint
    whose probability is the mean (or --combine max: the largest) of theirs (docs/model.md).
    The first explains alerts. Choose its alarm thresholds afterwards (python -m
    streamer.evaluation.thresholds).

    \b
    Example:
      streamer model ensemble --out ens.pt a.pt b.pt c.pt
    """
    from streamer.model.checkpoint import CheckpointError, load_checkpoint, save_ensemble

    try:
        loaded = [load_checkpoint(p) for p in members]
        model_id = save_ensemble(out, loaded, metadata={
            "members": [{"path": str(p), "model_id": m.model_id,
                         "training": {k: m.metadata.get(k) for k in
                                      ("command", "git", "device", "torch_version",
                                       "data_seeds", "wall_time_s")}}
                        for p, m in zip(members, loaded)],
            "command": "streamer model ensemble --out " + " ".join(
                [str(out), *(["--combine", combine] if combine != "mean" else []),
                 *map(str, members)]),
        }, combine=combine)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {out} ({combine} ensemble {model_id} of {len(loaded)}: "
               + ", ".join(m.model_id for m in loaded) + ")")


@model.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Model config YAML (default: the built-in default config).",
)
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Checkpoint file.",
)
@click.option(
    "--window", type=click.IntRange(min=1), help="Steps per window (default: the model's)."
)
@click.option(
    "--batch", "batches", default="1,64,256", show_default=True, help="Comma-separated batch sizes."
)
@click.option(
    "--threads", type=click.IntRange(min=1), help="torch.set_num_threads (default: torch's)."
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Minimum timing time per batch size.",
)
def speed(config_path, checkpoint_path, window, batches, threads, device, seconds) -> None:
    """Batch-1 latency and batched windows/s (inference mode, random full windows)."""
    if config_path and checkpoint_path:
        raise click.UsageError("give --config or --checkpoint, not both")
    try:
        batch_sizes = tuple(int(b) for b in batches.split(",") if b.strip())
    except ValueError:
        raise click.BadParameter(f"not a list of integers: {batches!r}", param_hint="--batch")
    if not batch_sizes or min(batch_sizes) < 1:
        raise click.BadParameter("batch sizes must be >= 1", param_hint="--batch")

    import torch

    from streamer.model.speed import benchmark, describe_runtime, format_table, pick_device

    if threads:
        torch.set_num_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda: no CUDA device available")
    dev = pick_device(None if device == "auto" else device)
    mdl, model_window, label = _build(config_path, checkpoint_path)
    window = window or model_window
    n_params = sum(p.numel() for p in mdl.parameters())
    click.echo(f"model: {label}, {n_params:,} parameters, window {window}")
    click.echo(describe_runtime(dev) + (" [CUDA]" if dev.type == "cuda" else ""))
    results = benchmark(
        mdl, window=window, batch_sizes=batch_sizes, device=dev, min_seconds=seconds
    )
    click.echo(format_table(results))
