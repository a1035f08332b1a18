# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plot of the reader bench (``ldap_bench.py``): seconds and peak RSS of each row against N.

matplotlib comes from requirements/bench.txt (``make bench`` installs it); without it no plot
is drawn and ``plot`` returns None.
"""

from __future__ import annotations

from pathlib import Path


def series(results: list[dict], key: str, field: str) -> tuple[list[int], list[float]]:
    """(N, value) of one row over every size where it was measured, in order of N; the field
    ``cost`` is the CPU seconds of the client and of slapd together."""
    points = sorted(
        (result["users"], _value(result["rows"][key], field))
        for result in results
        if result["rows"].get(key, {}).get("available")
    )
    return [n for n, _value in points], [value for _n, value in points]


def _value(row: dict, field: str) -> float:
    if field == "cost":
        return row.get("cpu_s", 0.0) + row.get("server_cpu_s", 0.0)
    return row[field]


def plot(results: list[dict], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from bench.ldap_bench import ROWS

    figure, (seconds_axis, cpu_axis, memory_axis) = plt.subplots(1, 3, figsize=(18, 4.8))
    for key, label, kind, _backend in ROWS:
        style = "-" if kind == "reader" else ":" if kind == "ldapsearch" else "-." if "gc-paused" in kind else "--"
        marker = "s" if key.endswith("+groups") else "o"
        sizes, seconds = series(results, key, "seconds")
        if not sizes:
            continue
        (line,) = seconds_axis.plot(sizes, seconds, linestyle=style, marker=marker, label=label)
        sizes, costs = series(results, key, "cost")
        cpu_axis.plot(sizes, costs, linestyle=style, marker=marker, color=line.get_color(), label=label)
        sizes, peaks = series(results, key, "peak_rss_mb")
        memory_axis.plot(sizes, peaks, linestyle=style, marker=marker, color=line.get_color(), label=label)
    memory_axis.axhline(500, color="red", linewidth=0.8, label="target: 500 MB")
    for axis, title, unit in (
        (seconds_axis, "read time (wall, paged, 1,000 a page)", "seconds"),
        (cpu_axis, "CPU of the read (client + slapd)", "CPU seconds"),
        (memory_axis, "peak RSS of the reading process", "MiB"),
    ):
        axis.set_title(title)
        axis.set_xlabel("entries (people)")
        axis.set_ylabel(unit)
        axis.set_xlim(left=0)
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
    seconds_axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return str(path)
