"""``scan.png``: throughput vs concurrency, one panel per server latency.

Each concurrent client is a line per page size (solid: the smaller page, dashed:
the larger); the SDK, which reads one page at a time, is a horizontal line;
aiobatch with no options at all is one star at its default concurrency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from .targets import find_cell

__all__ = ["draw_scan_chart"]

STYLE = {
    "aiobatch": ("aiobatch", "tab:blue"),
    "aiobatch-defaults": ("aiobatch, no options", "tab:green"),
    "bare": ("bare aiohttp+msgspec loop (floor)", "tab:gray"),
    "sdk-httpx": ("official SDK, httpx", "tab:red"),
    "sdk-aiohttp": ("official SDK, aiohttp", "tab:orange"),
}
DASHES = ("-", "--", ":", "-.")


def _items(x: float, _pos: object) -> str:
    if x >= 1e6:
        return f"{x / 1e6:g}M"
    if x >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def _defaults_concurrency(scan: dict[str, Any]) -> list[int]:
    """Where the star sits on the x axis (empty: aiobatch-defaults did not run)."""
    d = scan.get("defaults")
    return [d["concurrency"]] if d and "aiobatch-defaults" in scan["clients"] else []


def _draw_defaults(ax: Any, results: dict[str, Any], lat: float, label: str, color: Any) -> None:
    """One star: the scan runs the same whatever the page-size group, so the first."""
    cell = find_cell(results, "aiobatch-defaults", lat, results["scan"]["page_sizes"][0], 0)
    if cell and cell["items_per_s"]:
        d = results["scan"].get("defaults", {})
        tag = f"{label} (page {d.get('page_size', '?')}, c={cell['concurrency']})"
        ax.plot(
            [cell["concurrency"]],
            [cell["items_per_s"]],
            "*",
            color=color,
            ms=11,
            zorder=4,
            label=tag,
        )


def draw_scan_chart(results: dict[str, Any], path: Path) -> Path:
    scan = results["scan"]
    lats, pages, concs = scan["latencies_ms"], scan["page_sizes"], scan["concurrencies"]
    fig, axes = plt.subplots(
        1, len(lats), figsize=(5.2 * len(lats), 4.6), sharey=True, squeeze=False
    )
    ticks = sorted({*concs, *_defaults_concurrency(scan)})
    for ax, lat in zip(axes[0], lats, strict=True):
        for name in scan["clients"]:
            label, color = STYLE.get(name, (name, None))
            if name == "aiobatch-defaults":
                _draw_defaults(ax, results, lat, label, color)
                continue
            for k, page in enumerate(pages):
                style = DASHES[k % len(DASHES)]
                tag = f"{label}, page {page}"
                if name.startswith("sdk"):
                    cell = find_cell(results, name, lat, page, 1)
                    if cell and cell["items_per_s"]:
                        # The two transports nearly coincide: a wide pale line under a thin one.
                        wide = name == "sdk-httpx"
                        ax.axhline(
                            cell["items_per_s"],
                            color=color,
                            ls=style,
                            lw=3.2 if wide else 1.3,
                            alpha=0.45 if wide else 1.0,
                            label=tag,
                        )
                    continue
                xs, ys = [], []
                for c in concs:
                    cell = find_cell(results, name, lat, page, c)
                    if cell and cell["items_per_s"]:
                        xs.append(c)
                        ys.append(cell["items_per_s"])
                mine = name == "aiobatch"  # drawn on top of the floor where they meet
                ax.plot(
                    xs,
                    ys,
                    color=color,
                    ls=style,
                    marker="o" if mine else "s",
                    ms=4.5 if mine else 3.5,
                    lw=2.0 if mine else 1.4,
                    zorder=3 if mine else 2,
                    label=tag,
                )
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(c) for c in ticks])
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_items))
        ax.set_title(f"server latency {lat:g} ms per request")
        ax.set_xlabel("pages in flight (concurrency)")
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    axes[0][0].set_ylabel("items / s (log scale, higher is better)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    env = results["env"]
    fig.suptitle(
        f"Reading a {scan['items']:,}-item batch job: aiobatch vs the official SDK "
        f"(Python {env['python']}, {env['cpu_usable']} CPUs, simulator in its own process)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
