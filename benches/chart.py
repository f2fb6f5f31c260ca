#!/usr/bin/env python3
"""Bar chart (PNG) of a peer-benchmark campaign: fastlb vs nginx vs HAProxy.

  benches/chart.py [--idle IDLE.csv]... [--max-foreign 10] -o chart.png CAMPAIGN.csv...

Input: CSVs written by the shared harness (`campaign.sh` / `peers.sh`, and
`MODE=idle peers.sh` for --idle), e.g. the ones `benches/compare.sh` leaves in
its output directory. Output: one PNG with, for every workers value and every
scenario (name + client connections):
  (a) proxy CPU µs/request per proxy (`direct` has none and is left out);
  (b) requests/s per proxy, `direct` included as the ceiling, with each proxy's
      median req/s as a fraction of direct's;
  (c) with --idle: bytes of RSS per idle keep-alive connection per proxy.
Bars are medians, whiskers the min–max of the runs used. Run selection is the
one of the harness's summarize.py, which is imported when found (--bench-dir,
$BENCH_DIR, or ../shared/bench next to this repository) and mirrored below
otherwise: runs whose foreign (non-benchmark) CPU share exceeded --max-foreign %
are dropped from a (workers, scenario, conns, proxy) group unless none of its runs
is clean (the group is then kept whole and drawn hatched, "NOISY"); `direct`
rows are pooled over workers values, as summarize.py does.

Needs matplotlib (Debian: `apt-get install -y python3-matplotlib`); if the
running python lacks it and /usr/bin/python3 is another interpreter, the script
re-runs itself with /usr/bin/python3 (Debian's packages install there).
"""
import argparse
import csv
import importlib.util
import os
import re
import statistics as st
import sys
import textwrap
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
SYSTEM_PYTHON = "/usr/bin/python3"


def import_matplotlib():
    try:
        import matplotlib
    except ImportError:
        same = os.path.realpath(sys.executable) == os.path.realpath(SYSTEM_PYTHON)
        if os.path.exists(SYSTEM_PYTHON) and not same and not os.environ.get("CHART_PY_REEXEC"):
            os.environ["CHART_PY_REEXEC"] = "1"
            os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
        sys.exit("chart.py: matplotlib is not installed for %s; on Debian: apt-get install -y "
                 "python3-matplotlib (then run with %s)" % (sys.executable, SYSTEM_PYTHON))
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter
    return plt, Patch, FuncFormatter


# ----------------------------------------------------------------------------- run selection
# Mirror of shared/bench/summarize.py (f, med, load, foreign, clean); used only when that
# file cannot be imported. Keep in step with it.
class _Mirror:
    @staticmethod
    def f(x):
        try:
            return float(x)
        except (TypeError, ValueError):
            return None

    @staticmethod
    def med(v):
        v = [x for x in v if x is not None]
        return st.median(v) if v else None

    @staticmethod
    def load(files, label_filter):
        rows = []
        for fn in files:
            with open(fn) as fh:
                for r in csv.DictReader(fh):
                    if label_filter and label_filter not in (r.get("label") or ""):
                        continue
                    rows.append(r)
        return rows

    @classmethod
    def foreign(cls, r):
        f = cls.f
        c0, c1 = f(r.get("cpu0_busy_pct")), f(r.get("cpu1_busy_pct"))
        rec = f(r.get("foreign_cpu_pct")) or 0.0
        if c0 is None or c1 is None:
            return rec
        n = f(r.get("requests")) or 0
        own = (f(r.get("proxy_cpu_s")) or 0.0) + ((f(r.get("backend_cpu_us_req")) or 0) +
                                                  (f(r.get("wrk_cpu_us_req")) or 0)) * n / 1e6
        dur = f(r.get("duration_s")) or 10.0
        wide = max(0.0, (c0 + c1) / 2 - 100 * own / (2 * dur))
        return max(rec, wide)

    @classmethod
    def clean(cls, rs, max_foreign):
        if max_foreign is None:
            return rs, False
        ok = [r for r in rs if cls.foreign(r) <= max_foreign]
        return (ok, False) if ok else (rs, True)


def summarize_module(bench_dir):
    """summarize.py of the harness if found, else the mirror above."""
    for d in (bench_dir, os.environ.get("BENCH_DIR"), os.path.join(REPO_ROOT, "..", "shared", "bench")):
        if not d:
            continue
        path = os.path.join(d, "summarize.py")
        if os.path.isfile(path):
            sys.dont_write_bytecode = True          # never leave a __pycache__ in the harness dir
            spec = importlib.util.spec_from_file_location("bench_summarize", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            if all(hasattr(mod, n) for n in ("f", "med", "load", "foreign", "clean")):
                return mod, os.path.abspath(path)
    print("chart.py: harness summarize.py not found; using the built-in mirror of its run "
          "selection", file=sys.stderr)
    return _Mirror, None


def rank(p):
    """Proxy order of summarize.py: direct, nginx*, haproxy*, then the rest by name."""
    order = {"direct": 0, "nginx": 1, "haproxy": 2}
    return (order.get(p, 1 if p.startswith("nginx") else 2 if p.startswith("haproxy") else 5), p)


SC_ORDER = {"small": 0, "64k": 1, "1m": 2}


def campaign_stats(S, rows, max_foreign):
    """{(workers, scenario, conns, proxy): stats} with the medians summarize.py prints."""
    f, med = S.f, S.med
    groups, total, noisy = defaultdict(list), {}, set()
    for r in rows:
        groups[(int(r["workers"]), r["scenario"], int(r["conns"]), r["proxy"])].append(r)
    for k in list(groups):
        total[k] = len(groups[k])
        groups[k], bad = S.clean(groups[k], max_foreign)
        if bad:
            noisy.add(k)
    direct, direct_total, direct_noisy = defaultdict(list), defaultdict(int), set()
    for (w, sc, c, p), rs in groups.items():
        if p == "direct":
            direct[(sc, c)].extend(rs)
            direct_total[(sc, c)] += total[(w, sc, c, p)]
            if (w, sc, c, p) in noisy:
                direct_noisy.add((sc, c))
    workers = sorted({k[0] for k in groups if k[3] != "direct"}) or sorted({k[0] for k in groups})
    scenarios = sorted({(k[1], k[2]) for k in groups}, key=lambda s: (SC_ORDER.get(s[0], 9), s[0], s[1]))
    proxies = sorted({k[3] for k in groups}, key=rank)
    out = {}
    for w in workers:
        for sc, c in scenarios:
            for p in proxies:
                if p == "direct":
                    rs, n_tot, bad = direct.get((sc, c), []), direct_total[(sc, c)], (sc, c) in direct_noisy
                else:
                    k = (w, sc, c, p)
                    rs, n_tot, bad = groups.get(k, []), total.get(k, 0), k in noisy
                if not rs:
                    continue
                rps = [x for x in (f(r["rps"]) for r in rs) if x is not None]
                cpu = [x for x in (f(r["proxy_cpu_us_req"]) for r in rs) if x is not None]
                out[(w, sc, c, p)] = dict(n=len(rs), n_total=n_tot, noisy=bad, rps=rps, cpu=cpu,
                                          rps_med=med(rps), cpu_med=med(cpu))
    return out, workers, scenarios, proxies


def idle_stats(S, files):
    """{(proxy, workers, kind): stats} like summarize.py's idle table."""
    rows = S.load(files, None)
    g = defaultdict(list)
    for r in rows:
        g[(r["proxy"], r["workers"], r["kind"])].append(r)
    out = {}
    for k, rs in g.items():
        b = [x for x in (S.f(r["bytes_per_conn"]) for r in rs) if x is not None]
        opened = sorted({int(S.f(r["conns_open"]) or 0) for r in rs})
        out[k] = dict(n=len(rs), bpc=b, bpc_med=S.med(b), conns_open=opened)
    return out


# ----------------------------------------------------------------------------- drawing
BASE_COLORS = {"direct": "#9e9e9e", "nginx": "#2e7d32", "haproxy": "#1565c0", "fastlb": "#e65100"}
EXTRA_COLORS = ["#8e24aa", "#00838f", "#c62828", "#6d4c41", "#f9a825", "#3949ab", "#d81b60"]


def color_map(names):
    cmap, i = {}, 0
    for p in names:
        if p in BASE_COLORS:
            cmap[p] = BASE_COLORS[p]
        else:
            cmap[p] = EXTRA_COLORS[i % len(EXTRA_COLORS)]
            i += 1
    return cmap


def fmt_rps(v):
    return f"{v / 1000:,.1f}k" if v >= 10000 else f"{v:,.0f}"


def k_axis(v, _pos):
    return f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"


def bars(ax, items, colors, fmt, ylabel=None):
    """items: [(name, tick label, values, median, noisy, extra label line or None)]."""
    if not items:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="#777")
        ax.set_xticks([])
        return
    xs = list(range(len(items)))
    meds = [it[3] for it in items]
    lo = [m - min(v) for m, v in zip(meds, (it[2] for it in items))]
    hi = [max(v) - m for m, v in zip(meds, (it[2] for it in items))]
    ax.bar(xs, meds, width=0.68, color=[colors[it[0]] for it in items],
           hatch=[("//" if it[4] else None) for it in items], edgecolor="white", linewidth=0.6,
           yerr=[lo, hi], error_kw=dict(ecolor="#333", elinewidth=0.9, capsize=3), zorder=2)
    top = max(max(it[2]) for it in items)
    for x, it in zip(xs, items):
        ax.text(x, max(it[2]) + top * 0.02, fmt(it[3]), ha="center", va="bottom", fontsize=8.5,
                fontweight="bold", linespacing=1.1)
        if it[5]:
            ax.text(x, max(it[2]) + top * 0.085, it[5], ha="center", va="bottom", fontsize=7.5,
                    color="#444")
    ax.set_ylim(0, top * 1.3)
    ax.set_xticks(xs)
    ax.set_xticklabels([it[1] for it in items], fontsize=8.5)
    ax.set_xlim(-0.6, len(items) - 0.4)
    ax.grid(axis="y", color="#ddd", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", labelsize=8)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9)


def tick(p, st_):
    t = f"{p}\n{st_['n']}/{st_['n_total']} runs"
    return t + "\nNOISY" if st_["noisy"] else t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+", help="campaign CSVs (campaign.sh / peers.sh)")
    ap.add_argument("--idle", action="append", default=[], metavar="IDLE.csv",
                    help="idle-connection CSV (MODE=idle peers.sh); repeatable")
    ap.add_argument("-o", "--output", required=True, help="PNG to write")
    ap.add_argument("--max-foreign", type=float, default=10.0,
                    help="use only runs whose foreign CPU share is <= this %% (as summarize.py); "
                         "-1 = use all runs  [10]")
    ap.add_argument("--bench-dir", help="harness dir holding summarize.py [$BENCH_DIR or ../shared/bench]")
    ap.add_argument("--title", help="figure title")
    ap.add_argument("--dpi", type=int, default=110)
    a = ap.parse_args()
    missing = [x for x in a.csv + a.idle if not os.path.isfile(x)]
    if missing:
        sys.exit("chart.py: no such file: " + " ".join(missing))
    plt, Patch, FuncFormatter = import_matplotlib()

    S, spath = summarize_module(a.bench_dir)
    mf = None if a.max_foreign < 0 else a.max_foreign
    rows = S.load(a.csv, None)
    if not rows:
        sys.exit("chart.py: no rows in " + " ".join(a.csv))
    stats, workers, scenarios, proxies = campaign_stats(S, rows, mf)
    idle = idle_stats(S, a.idle) if a.idle else {}
    idle_proxies = sorted({k[0] for k in idle}, key=rank)
    all_proxies = proxies + [p for p in idle_proxies if p not in proxies]
    colors = color_map(all_proxies)

    ncol = max(1, len(scenarios))
    nrow = 2 * len(workers) + (1 if idle else 0)
    width = max(4.3 * ncol, 10.0)
    dates = sorted(r["date"] for r in rows if r.get("date"))
    names = [os.path.basename(x) for x in a.csv]
    sel = (f"runs with foreign CPU ≤ {mf:g} % (a group with none is kept whole, hatched, NOISY)"
           if mf is not None else "all runs")
    wrap = int(width * 72 / (9 * 0.53))
    sub = [f"bars: median of {sel}; whiskers: min–max of those runs; "
           "N.NN× = req/s relative to direct (no proxy)",
           "data: " + ", ".join(names + [os.path.basename(x) for x in a.idle])
           + (f"  ({dates[0]} – {dates[-1]})" if dates else "")]
    sub = [ln for para in sub for ln in textwrap.wrap(para, wrap)][:3]
    legend_y = 0.7 + 0.19 * len(sub)            # inches from the top
    row_h, head_h, foot_h = 3.35, legend_y + 0.85, 0.25
    height = nrow * row_h + head_h + foot_h
    fig = plt.figure(figsize=(width, height))
    gs = fig.add_gridspec(nrow, ncol, left=1.0 / width, right=1 - 0.25 / width,
                          top=1 - head_h / height, bottom=foot_h / height + 0.55 / height,
                          hspace=0.62, wspace=0.28)

    title = a.title or "Reverse-proxy comparison: " + " vs ".join(p for p in proxies if p != "direct")
    fig.suptitle(title, fontsize=15, fontweight="bold", y=1 - 0.12 / height, va="top")
    fig.text(0.5, 1 - 0.55 / height, "\n".join(sub), ha="center", va="top", fontsize=9,
             color="#444", linespacing=1.35)
    fig.legend(handles=[Patch(facecolor=colors[p], label=p) for p in all_proxies],
               loc="upper center", ncol=len(all_proxies), fontsize=10, frameon=False,
               bbox_to_anchor=(0.5, 1 - legend_y / height))

    r = 0
    for w in workers:
        for j, (sc, c) in enumerate(scenarios):
            ax = fig.add_subplot(gs[r, j])
            items = []
            for p in proxies:
                s = stats.get((w, sc, c, p))
                if p == "direct" or not s or not s["cpu"]:
                    continue
                items.append((p, tick(p, s), s["cpu"], s["cpu_med"], s["noisy"], None))
            bars(ax, items, colors, lambda v: f"{v:,.1f}",
                 f"workers={w}\nproxy CPU µs / request\n(lower is better)" if j == 0 else None)
            ax.set_title(f"{sc}, c={c}, workers={w}: proxy CPU per request", fontsize=10)

            ax = fig.add_subplot(gs[r + 1, j])
            items = []
            d = stats.get((w, sc, c, "direct"))
            for p in proxies:
                s = stats.get((w, sc, c, p))
                if not s or not s["rps"]:
                    continue
                extra = "ceiling" if p == "direct" else (
                    f"{s['rps_med'] / d['rps_med']:.2f}×" if d and d["rps_med"] else None)
                items.append((p, tick(p, s), s["rps"], s["rps_med"], s["noisy"], extra))
            bars(ax, items, colors, fmt_rps,
                 f"workers={w}\nrequests / s\n(higher is better)" if j == 0 else None)
            ax.yaxis.set_major_formatter(FuncFormatter(k_axis))
            ax.set_title(f"{sc}, c={c}, workers={w}: throughput", fontsize=10)
        r += 2

    if idle:
        span = ncol if ncol < 3 else (ncol + 1) // 2
        ax = fig.add_subplot(gs[r, 0:span])
        keys = sorted(idle, key=lambda k: (rank(k[0]), k[1], k[2]))
        plain = len({(k[1], k[2]) for k in keys}) == 1
        items = []
        for k in keys:
            s = idle[k]
            if not s["bpc"]:
                continue
            lab = k[0] if plain else f"{k[0]}\nw={k[1]} {k[2]}"
            co = s["conns_open"]
            conns = f"{co[0]:,}" if len(co) == 1 else f"{co[0]:,}–{co[-1]:,}"
            items.append((k[0], lab, s["bpc"], s["bpc_med"], False, f"n={s['n']}, {conns} conns"))
        bars(ax, items, colors, lambda v: f"{v:,.0f} B", "bytes / idle connection\n(lower is better)")
        what = f", workers={keys[0][1]}, {keys[0][2]}" if plain and keys else ""
        ax.set_title(f"Memory per idle keep-alive connection (RSS delta / open connections{what})",
                     fontsize=10)
        if span < ncol:
            note = fig.add_subplot(gs[r, span:])
            note.axis("off")
            bullets = [
                "CPU µs/request = user+system CPU time of the proxy's whole process tree during "
                "the measured run / requests: the most robust number here.",
                "requests/s: direct = wrk → backend with no proxy, the ceiling of this 2-core "
                "setup; proxied req/s is bounded by it.",
                "workers=1: the proxy has cpu0 to itself; workers=2: it also competes with wrk "
                "and the backends for cpu1.",
                "idle memory: (RSS after − RSS before) / open connections, each after one "
                "request; kernel socket memory is not included, and nginx's preallocated "
                "connection slots are in its baseline.",
                "Only compare numbers from the same interleaved campaign.",
            ]
            pos = note.get_position()
            avail_pt = (pos.height * height + 0.3) * 72      # axes height + its title's room
            for fs in (8.5, 8.0, 7.5, 7.0, 6.5):
                cols = int(pos.width * width * 72 / (fs * 0.62))
                lines = ["How to read this chart"]
                for b in bullets:
                    lines += textwrap.wrap(b, cols, initial_indent="• ", subsequent_indent="   ")
                if len(lines) * fs * 1.4 <= avail_pt:
                    break
            note.text(0.02, 1.0 + 0.3 / (pos.height * height), "\n".join(lines), va="top", ha="left", fontsize=fs,
                      color="#333", linespacing=1.4, transform=note.transAxes)
    src = f"run selection: {spath}" if spath else "run selection: built-in mirror of summarize.py"
    fig.text(0.005, 0.08 / height, src, ha="left", va="bottom", fontsize=7, color="#888")
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    fig.savefig(a.output, dpi=a.dpi)
    print(f"chart: {a.output}")


if __name__ == "__main__":
    main()
