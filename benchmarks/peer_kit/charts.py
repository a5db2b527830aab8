"""Charts of the peer benchmark's results (``benchmarks/peers.py``): one PNG per phase.

Run on a saved results file: ``python benchmarks/peer_kit/charts.py results.json out_dir``.
Every phase, and every agent, may be missing (a skipped phase, an agent that failed to
install): a chart is drawn only for the phases that have rows, with the agents they have.
matplotlib is imported inside ``write_charts`` (Agg backend, no screen), so importing this
module costs nothing to the benchmark that only saves the JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

AGENT_ORDER = ("none", "rasp", "zen", "ddtrace")
# One colour per agent in every chart: the baseline grey, ours the strongest.
COLOURS = {"none": "#9a9a9a", "rasp": "#1f5fbf", "zen": "#f28e2b", "ddtrace": "#8e44ad"}
EXTRA_COLOURS = ("#2a9d8f", "#c0392b", "#6d4c41", "#d4a017")
FAMILY_NAMES = {"sql": "SQL injection", "shell": "shell injection", "path": "path traversal",
                "ssrf": "SSRF"}  # fmt: skip
FIGSIZE = (8.4, 4.7)  # inches; at DPI 120 about 1000 x 560 px
DPI = 120
LOG_FLOOR_US = 0.01  # log-scale stand-in for an added cost of zero or less
LOG_SPAN = 30.0  # switch the micro chart to a log axis when max / min exceeds this
HEADROOM = 1.18  # room above the tallest bar for its value label

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Look:
    """What every chart of one run shares: agent order, display names, colours, footnote."""

    agents: tuple[str, ...]
    names: Mapping[str, str]
    colours: Mapping[str, str]
    footnote: str

    def present(self, rows: Iterable[Row], *, baseline: bool) -> list[str]:
        seen = {row["agent"] for row in rows}
        return [a for a in self.agents if a in seen and (baseline or a != "none")]


@dataclass(frozen=True, slots=True)
class _Bar:
    value: float
    label: str


def write_charts(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Writes the PNG charts for `results` into out_dir and returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    look = _look(results)
    charts: tuple[tuple[str, str, Callable[[list[Row], _Look], Figure]], ...] = (
        ("overhead", "peers_throughput.png", _throughput),
        ("overhead", "peers_latency.png", _latency),
        ("micro", "peers_micro.png", _micro),
        ("accuracy", "peers_accuracy.png", _accuracy),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with plt.rc_context({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False}):
        for section, filename, draw in charts:
            rows = list(results.get(section) or ())
            if not look.present(rows, baseline=section == "overhead"):
                continue
            fig = draw(rows, look)
            path = out_dir / filename
            fig.savefig(path, dpi=DPI)
            plt.close(fig)
            written.append(path)
    return written


def _look(results: Mapping[str, Any]) -> _Look:
    meta = results.get("meta") or {}
    declared = dict(meta.get("agents") or {})
    seen = {
        row["agent"]
        for section in ("overhead", "micro", "accuracy")
        for row in results.get(section) or ()
    }
    extras = sorted((seen | declared.keys()) - set(AGENT_ORDER))
    agents = tuple(a for a in AGENT_ORDER if a in seen) + tuple(a for a in extras if a in seen)
    colours = dict(COLOURS)
    colours.update(zip(extras, itertools.cycle(EXTRA_COLOURS)))
    names = {a: declared.get(a) or a for a in agents}
    notes = [
        meta.get("date"),
        meta.get("machine"),
        meta.get("python") and f"CPython {meta['python']}",
    ]
    if meta.get("quick"):
        notes.append("quick run (fewer rounds)")
    return _Look(agents, names, colours, " · ".join(str(n) for n in notes if n))


def _figure(nrows: int = 1, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=FIGSIZE, squeeze=False, layout="constrained")
    # The layout engine does not place a footnote: the bottom strip is kept for it.
    fig.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))  # type: ignore[union-attr, call-arg]
    return fig, list(axes.flat)


def _finish(
    fig: Figure, look: _Look, title: str, agents: Sequence[str], extra: Sequence[Artist] = ()
) -> Figure:
    """Titles the legend above the axes (a suptitle would overlap an outside legend)."""
    from matplotlib.patches import Patch

    handles: list[Artist] = [Patch(color=look.colours[a], label=look.names[a]) for a in agents]
    handles.extend(extra)
    fig.legend(
        handles=handles,
        loc="outside upper center",
        ncols=len(handles),
        frameon=False,
        title=title,
        title_fontproperties={"size": 11, "weight": "bold"},
    )
    fig.text(0.01, 0.01, look.footnote, fontsize=7, color="#555555", va="bottom")
    return fig


def _grouped_bars(
    ax: Axes,
    groups: Sequence[str],
    series: Mapping[str, Sequence[_Bar | None]],
    colours: Mapping[str, str],
    *,
    labelled: bool = True,
    hatch: str | None = None,
    alpha: float = 1.0,
) -> None:
    """One group of bars per x label, one bar per series (a fixed slot, even when missing)."""
    width = 0.8 / max(len(series), 1)
    for slot, (agent, bars) in enumerate(series.items()):
        drawn = [(i, b) for i, b in enumerate(bars) if b is not None]
        if not drawn:
            continue
        xs = [i - 0.4 + width * (slot + 0.5) for i, _ in drawn]
        container = ax.bar(
            xs,
            [b.value for _, b in drawn],
            width * 0.92,
            color=colours[agent],
            alpha=alpha,
            hatch=hatch,
            edgecolor="white" if hatch else None,
            linewidth=0,
        )
        if labelled:
            # A white box, so a reference line drawn across the label does not strike it out.
            box = {"facecolor": "white", "edgecolor": "none", "boxstyle": "square,pad=0.1"}
            ax.bar_label(container, [b.label for _, b in drawn], padding=2, fontsize=7.5, bbox=box)
    ax.set_xticks(range(len(groups)), groups)
    ax.tick_params(axis="x", length=0)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _top(ax: Axes, peak: float, minimum: float = 0.0) -> None:
    ax.set_ylim(0, max(peak, minimum) * HEADROOM or 1.0)


def _by_scenario(
    rows: Sequence[Row], agents: Sequence[str], bar: Callable[[Row], _Bar | None]
) -> tuple[list[str], dict[str, list[_Bar | None]]]:
    """The grouped-bar input of the overhead phase: x = server + database, one series per agent."""
    scenarios = list(dict.fromkeys((row["server"], row["db"]) for row in rows))
    index = {(row["server"], row["db"], row["agent"]): row for row in rows}
    series = {a: [bar(r) if (r := index.get((*s, a))) else None for s in scenarios] for a in agents}
    return [f"{server}\n{db}" for server, db in scenarios], series


def _peak(series: Mapping[str, Sequence[_Bar | None]]) -> float:
    return max((b.value for bars in series.values() for b in bars if b), default=0.0)


def _throughput(rows: list[Row], look: _Look) -> Figure:
    agents = look.present(rows, baseline=False)
    groups, series = _by_scenario(rows, agents, _ratio_bar(rows))
    fig, (ax,) = _figure()
    _grouped_bars(ax, groups, series, look.colours)
    label = f"{look.names.get('none', 'no agent')} = 1.0"
    line = ax.axhline(1.0, color=look.colours["none"], linestyle="--", linewidth=1, label=label)
    ax.set_ylabel("requests/s ÷ requests/s with no agent")
    _top(ax, _peak(series), minimum=1.0)
    title = "Throughput with each agent, relative to no agent (higher is better)"
    return _finish(fig, look, title, agents, [line])


def _ratio_bar(rows: Sequence[Row]) -> Callable[[Row], _Bar | None]:
    baseline = {(r["server"], r["db"]): r["rps"] for r in rows if r["agent"] == "none"}

    def bar(row: Row) -> _Bar | None:
        ratio = row.get("ratio")
        if ratio is None and baseline.get((row["server"], row["db"])):
            ratio = row["rps"] / baseline[row["server"], row["db"]]
        if ratio is None:
            return None
        errors = row.get("errors") or 0
        return _Bar(ratio, f"{ratio:.2f}" + (f"\n{errors} err" if errors else ""))

    return bar


def _latency(rows: list[Row], look: _Look) -> Figure:
    from matplotlib.patches import Patch

    agents = look.present(rows, baseline=True)
    groups, p99 = _by_scenario(rows, agents, lambda r: _Bar(r["p99_ms"], _ms(r["p99_ms"])))
    _, p50 = _by_scenario(rows, agents, lambda r: _Bar(r["p50_ms"], "") if "p50_ms" in r else None)
    key = [Patch(facecolor="#aaaaaa", label="p99"),
           Patch(facecolor="#dddddd", hatch="///", edgecolor="white", label="p50")]  # fmt: skip
    fig, (ax,) = _figure()
    _grouped_bars(ax, groups, p99, look.colours)
    # p50 inside its p99 bar: the same slot, lighter and hatched, no label of its own.
    _grouped_bars(ax, groups, p50, look.colours, labelled=False, hatch="///", alpha=0.45)
    ax.set_ylabel("ms (solid: p99, hatched: p50)")
    _top(ax, _peak(p99))
    title = "Latency per request with each agent, ms (lower is better)"
    return _finish(fig, look, title, agents, key)


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _micro(rows: list[Row], look: _Look) -> Figure:
    agents = look.present(rows, baseline=False)
    rows = [r for r in rows if r["agent"] in agents]
    ops = list(dict.fromkeys(r["op"] for r in rows))
    inputs = sorted({r["inputs"] for r in rows})
    positive = [r["added_us"] for r in rows if r["added_us"] > 0]
    log = bool(positive) and max(positive) / min(positive) > LOG_SPAN
    ncols = min(3, len(ops))
    nrows = math.ceil(len(ops) / ncols)
    fig, axes = _figure(nrows, ncols)
    for ax, op in zip(axes[: len(ops)], ops, strict=True):
        _micro_panel(ax, [r for r in rows if r["op"] == op], agents, inputs, look, log=log)
        ax.set_title(op, fontsize=9.5)
    for ax in axes[len(ops) :]:
        ax.set_axis_off()
    unit = "added µs per call"
    fig.supylabel(f"{unit} (log scale; 0 or less drawn at {LOG_FLOOR_US})" if log else unit, size=9)
    # Under the lowest panel of each column (a supxlabel would sit on the footnote).
    for ax in axes[len(ops) - ncols : len(ops)]:
        ax.set_xlabel("inputs in the request")
    title = "Time an agent adds to one guarded call, by inputs in the request (µs)"
    return _finish(fig, look, title, agents)


def _micro_panel(
    ax: Axes, rows: Sequence[Row], agents: Sequence[str], inputs: Sequence[int], look: _Look,
    *, log: bool,
) -> None:  # fmt: skip
    # Inputs 0, 20, 1000 are categories, evenly spaced: a log x axis has no place for 0.
    slot = {n: i for i, n in enumerate(inputs)}
    for agent in agents:
        points = sorted((slot[r["inputs"]], r["added_us"]) for r in rows if r["agent"] == agent)
        if not points:
            continue
        ys = [max(y, LOG_FLOOR_US) if log else y for _, y in points]
        ax.plot([x for x, _ in points], ys, marker="o", color=look.colours[agent], linewidth=2)
    ax.set_xticks(range(len(inputs)), [f"{n:,}" for n in inputs])
    ax.set_xlim(-0.3, len(inputs) - 0.7)
    if log:
        ax.set_yscale("log")
    else:
        ax.axhline(0, color="#999999", linewidth=0.8)
    ax.grid(alpha=0.3, which="major")


def _accuracy(rows: list[Row], look: _Look) -> Figure:
    agents = look.present(rows, baseline=False)
    families = list(dict.fromkeys(r["family"] for r in rows))
    index = {(r["agent"], r["family"]): r for r in rows}
    fig, (upper, lower) = _figure(nrows=2)
    panels = ((upper, "attacks", "detected", "attacks detected, %", 100.0),
              (lower, "honest", "false_positives", "honest flagged, %", 10.0))  # fmt: skip
    groups = [FAMILY_NAMES.get(f, f) for f in families]
    for ax, total, hits, label, minimum in panels:
        series = {a: [_share(index.get((a, f)), hits, total) for f in families] for a in agents}
        _grouped_bars(ax, groups, series, look.colours)
        ax.set_ylabel(label)
        _top(ax, _peak(series), minimum=minimum)
    upper.tick_params(axis="x", labelbottom=False)
    title = "Attacks detected and honest requests flagged (false positives), by family, %"
    return _finish(fig, look, title, agents)


def _share(row: Row | None, hits: str, total: str) -> _Bar | None:
    if row is None or not row.get(total):
        return None
    return _Bar(100.0 * row[hits] / row[total], f"{row[hits]}/{row[total]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the results JSON of benchmarks/peers.py")
    parser.add_argument("out_dir", type=Path, help="where to write the PNG files")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    for path in write_charts(results, args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
