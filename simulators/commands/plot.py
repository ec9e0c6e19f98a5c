"""``caster-sim plot``: draw an event, a hard negative or any stretch of a strand to a PNG."""

from __future__ import annotations

import click


@click.command()
@click.argument("data_dir", type=click.Path(path_type=str))
@click.option("--event", "event_id", metavar="ID",
              help="Event or nuisance id (event_id in events/nuisances.parquet), or a type "
                   "name (sticker, crack, slag, speed_change, ...) for the first of that type.")
@click.option("--strand", metavar="STRAND", help="Strand id, with --at.")
@click.option("--at", "at", type=float, metavar="TS", help="Epoch seconds to centre on, with --strand.")
@click.option("--before", default=120.0, show_default=True, help="Seconds shown before onset / --at.")
@click.option("--after", default=60.0, show_default=True,
              help="Seconds shown after critical_ts / --at.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="PNG file to write.")
def plot(data_dir: str, event_id: str | None, strand: str | None, at: float | None,
         before: float, after: float, out: str) -> None:
    """Draw thermocouples by row (event column highlighted), mould level and casting speed.

    \b
    Examples:
      caster-sim plot data/sim --event C1-S1-E0001 --out event.png
      caster-sim plot data/sim --event sticker --out sticker.png
      caster-sim plot data/sim --strand C1-S2 --at 1735693000 --before 300 --out s2.png
    """
    if (event_id is None) == (strand is None and at is None):
        raise click.UsageError("give either --event ID or both --strand and --at")
    if event_id is None and (strand is None or at is None):
        raise click.UsageError("--strand and --at go together")
    if before < 0 or after < 0:
        raise click.UsageError("--before and --after must be >= 0")

    from simulators.heatfile import HeatFileError, read_heats
    from simulators.plot import PlotError, event_window, plot_window, time_window

    try:
        heats = read_heats(data_dir)
        if event_id is not None:
            win = event_window(heats, event_id, before, after)
        else:
            assert strand is not None and at is not None
            win = time_window(heats, strand, at, before, after)
        path = plot_window(heats, win, out)
    except (HeatFileError, PlotError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path}")
