"""``caster-sim generate``: simulate strands with labelled defects and hard negatives."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(2)


@click.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder to write (manifest.json + readings/events/nuisances.parquet).")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=str),
              help="YAML file of settings (configs/sim/default.yaml); flags override it.")
@click.option("--seed", type=int, help="Root seed; a held-out set needs a seed training never saw.")
@click.option("--casters", type=int, help="Number of casters.")
@click.option("--strands", type=int, help="Strands per caster (1-8).")
@click.option("--hours", type=float, help="Hours of casting per strand.")
@click.option("--heats", type=int, help="Heats per caster instead of --hours.")
@click.option("--hz", type=float, help="Readings per second.")
@click.option("--rows", type=int, help="Thermocouple rows (depths: row_depths_mm in the YAML, else 210 mm + 117.5 mm steps).")
@click.option("--cols", type=int, help="Thermocouple columns.")
@click.option("--start-ts", type=float, help="Epoch seconds of the first reading.")
@click.option("--rate", "rates", multiple=True, metavar="KIND=PER_HOUR",
              help="Events (sticker, crack, slag) or hard negatives per strand-hour; repeatable.")
@click.option("--force", is_flag=True, help="Overwrite an existing heat folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def generate(out: str, config: str | None, seed: int | None, casters: int | None,
             strands: int | None, hours: float | None, heats: int | None, hz: float | None,
             rows: int | None, cols: int | None, start_ts: float | None, rates: tuple[str, ...],
             force: bool, quiet: bool) -> None:
    """Generate heats of simulated strands with ground-truth defect events.

    \b
    Examples:
      caster-sim generate --out data/train --config configs/sim/default.yaml
      caster-sim generate --out data/heldout --config configs/sim/default.yaml --seed 1001
      caster-sim generate --out data/tiny --strands 1 --hours 0.5 --rate sticker=4
    """
    import time

    from simulators.caster.config import NUISANCE_KINDS, ConfigError, load_config
    from streamer.channels import DEFECT_TYPES

    overrides: dict = {k: v for k, v in (
        ("seed", seed), ("casters", casters), ("strands_per_caster", strands), ("hours", hours),
        ("heats", heats), ("hz", hz), ("tc_rows", rows), ("tc_cols", cols),
        ("start_ts", start_ts)) if v is not None}  # flags given; None = not given
    for item in rates:
        kind, sep, num = item.partition("=")
        kind = kind.strip()
        try:
            value = float(num)
        except ValueError:
            value = None
        if not sep or value is None:
            _fail(f"--rate {item!r}: expected KIND=PER_HOUR, e.g. sticker=1.5")
        if kind in DEFECT_TYPES:
            overrides.setdefault("rates", {})[kind] = value
        elif kind in NUISANCE_KINDS:
            overrides.setdefault("nuisance_rates", {})[kind] = value
        else:
            _fail(f"--rate {item!r}: unknown kind {kind!r} (defects: {', '.join(DEFECT_TYPES)}; "
                  f"hard negatives: {', '.join(NUISANCE_KINDS)})")
    try:
        cfg = load_config(config, **overrides)
    except ConfigError as exc:
        _fail(str(exc))

    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        _fail(f"--out {out}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        _fail(f"--out {out}: folder is not empty (use --force to overwrite)")

    from simulators.caster.generate import generate as run
    from simulators.heatfile import write_heats

    t0 = time.perf_counter()
    try:
        heats_set = run(cfg, progress=not quiet)
        write_heats(folder, heats_set)
    except MemoryError:
        _fail("out of memory: generate fewer strands or hours at a time")
    except OSError as exc:
        click.echo(f"error: cannot write {out}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    dt = time.perf_counter() - t0
    c = heats_set.manifest["counts"]
    ev = ", ".join(f"{k} {v}" for k, v in c["events"].items())
    nu = ", ".join(f"{k} {v}" for k, v in c["nuisances"].items())
    click.echo(f"wrote {folder}: {c['strands']} strands, {c['readings']} readings "
               f"({len(heats_set.channels)} channels at {cfg.hz:g} Hz), seed {cfg.seed}, {dt:.1f} s")
    click.echo(f"  events: {ev}")
    click.echo(f"  hard negatives: {nu}")
    if c.get("dropped"):
        dr = ", ".join(f"{k} {v}" for k, v in c["dropped"].items())
        click.echo(f"  left out for lack of free time (lower the rates or add hours): {dr}")
