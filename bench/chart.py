"""Draw a bench/run results file as a PNG: req/s, CPU us/request and latency per target.

    bench/.venv/bin/python bench/chart.py bench/results/latest.json out.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

COLORS = {"funcd": "#1f6fb4", "uvicorn": "#e07b24"}
OTHER = "#6b6b6b"


def main(src: str, dst: str) -> None:
    res = json.load(open(src))
    rows = [t for t in res["targets"] if t.get("summary")]
    if not rows:
        raise SystemExit("chart.py: no successful target to draw")
    names = [t["name"] for t in rows]
    colors = [COLORS.get(t["family"], OTHER) for t in rows]
    s = [t["summary"] for t in rows]
    y = list(range(len(rows)))[::-1]   # first target on top

    fig, axes = plt.subplots(1, 3, figsize=(15, 1.9 + 0.62 * len(rows)), sharey=True,
                             gridspec_kw={"width_ratios": [1.25, 1, 1]})
    ax_rps, ax_cpu, ax_lat = axes

    rps = [x["rps"] for x in s]
    lo = [x["rps"] - min(x["rps_runs"]) for x in s]
    hi = [max(x["rps_runs"]) - x["rps"] for x in s]
    ax_rps.barh(y, rps, color=colors, xerr=[lo, hi], capsize=3, ecolor="#333333")
    ax_rps.set_title("requests/s (median of runs; whiskers: min-max)")
    for yi, v, top in zip(y, rps, (max(x["rps_runs"]) for x in s)):
        ax_rps.text(top, yi, f"  {v:,.0f}", va="center", ha="left", fontsize=9)
    ax_rps.set_xlim(0, max(max(x["rps_runs"]) for x in s) * 1.3)
    ax_rps.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))

    cpu = [x["cpu_us_per_req"] or 0 for x in s]
    ax_cpu.barh(y, cpu, color=colors)
    ax_cpu.set_title("server CPU per request (us, lower is better)")
    for yi, v in zip(y, cpu):
        ax_cpu.text(v, yi, f"  {v:.1f}", va="center", ha="left", fontsize=9)
    ax_cpu.set_xlim(0, max(cpu) * 1.3 or 1)

    p50 = [x["p50_ms"] for x in s]
    p99 = [x["p99_ms"] for x in s]
    ax_lat.barh([v + 0.18 for v in y], p50, height=0.36, color=colors, alpha=0.55, label="p50")
    ax_lat.barh([v - 0.18 for v in y], p99, height=0.36, color=colors, label="p99")
    for yi, a, b in zip(y, p50, p99):
        ax_lat.text(a, yi + 0.18, f"  p50 {a:.2f}", va="center", ha="left", fontsize=8)
        ax_lat.text(b, yi - 0.18, f"  p99 {b:.2f}", va="center", ha="left", fontsize=8)
    ax_lat.set_title("latency (ms, median run)")
    ax_lat.set_xlim(0, max(p99) * 1.45)

    ax_rps.set_yticks(y)
    ax_rps.set_yticklabels(names)
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)

    cfg, m = res["config"], res["machine"]
    fig.suptitle(
        f"funcd bench {res['started_at']}  |  wrk -t{cfg['wrk']['threads']} -c{cfg['wrk']['connections']}, "
        f"{cfg['runs']} x {cfg['duration_s']:g} s, server on CPU {cfg['server_cpus']}, wrk on CPU {cfg['load_cpus']}"
        f"  |  {m.get('cpu_model') or '?'}, {m['nproc']} CPUs, Linux {m['kernel']}",
        fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
