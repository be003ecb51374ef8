"""Draws bench/out/RUN/results.tsv as SVG charts (no dependency beyond Python):
msgs/s against sessions, and CPU per message, one line per target, one chart per message size.
    python3 bench/plot.py bench/out/RUN [OUTDIR]      -> OUTDIR/throughput-4KiB.svg, cpu-4KiB.svg, ...
"""
import csv
import math
import os
import sys

COLORS = ["#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


def load(run):
    rows = list(csv.DictReader(open(os.path.join(run, "results.tsv")), delimiter="\t"))
    return [r for r in rows if r["status"].startswith("ok")]


def size_label(size):
    size = int(size)
    return "%dMiB" % (size >> 20) if size >= 1 << 20 else "%dKiB" % (size >> 10)


def chart(path, title, ylabel, series, log_y):
    w, h, left, right, top, bottom = 760, 440, 70, 200, 40, 50
    xs = sorted({x for pts in series.values() for x, _ in pts})
    ys = [y for pts in series.values() for _, y in pts if y > 0]
    if not xs or not ys:
        return
    ymin, ymax = (min(ys), max(ys))
    if log_y:
        lo, hi = math.floor(math.log10(ymin)), math.ceil(math.log10(ymax))
        ty = lambda y: top + (h - top - bottom) * (1 - (math.log10(max(y, 10 ** lo)) - lo) / max(hi - lo, 1))
        ticks = [10 ** e for e in range(lo, hi + 1)]
    else:
        hi = ymax * 1.1
        ty = lambda y: top + (h - top - bottom) * (1 - y / hi)
        ticks = [hi * i / 5 for i in range(6)]
    tx = lambda x: left + (w - left - right) * (xs.index(x) / max(len(xs) - 1, 1))
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="15">%s</text>' % (left, title)]
    for t in ticks:
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (left, w - right, ty(t), ty(t)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 6, ty(t) + 4, "%g" % round(t, 1)))
    for x in xs:
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (tx(x), h - bottom + 18, x))
    out.append('<text x="%d" y="%d" text-anchor="middle">sessions</text>' % ((left + w - right) // 2, h - 12))
    out.append('<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">%s</text>' % (h // 2, h // 2, ylabel))
    for i, (name, pts) in enumerate(sorted(series.items())):
        c = COLORS[i % len(COLORS)]
        pts = sorted(p for p in pts if p[1] > 0)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (c, " ".join("%.1f,%.1f" % (tx(x), ty(y)) for x, y in pts)))
        for x, y in pts:
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (tx(x), ty(y), c))
        ly = top + 18 * i
        out.append('<rect x="%d" y="%d" width="12" height="4" fill="%s"/><text x="%d" y="%d">%s</text>' % (w - right + 12, ly, c, w - right + 30, ly + 6, name))
    out.append("</svg>")
    open(path, "w").write("\n".join(out))


def main():
    run = sys.argv[1]
    outdir = sys.argv[2] if len(sys.argv) > 2 else run
    rows = load(run)
    for size in sorted({r["size"] for r in rows}, key=int):
        thr, cpu = {}, {}
        for r in rows:
            if r["size"] != size:
                continue
            s = int(r["sessions"])
            thr.setdefault(r["target"], []).append((s, float(r["msgs_per_s"])))
            us = float(r["sut_cpu_us_per_msg"] or 0)
            if r["target"] == "direct":  # the sink's own CPU per message, for scale
                us = float(r["sink_cpu_pct"]) * 1e4 / max(float(r["msgs_per_s"]), 1)
            cpu.setdefault(r["target"] if r["target"] != "direct" else "direct (sink)", []).append((s, us))
        label = size_label(size)
        chart(os.path.join(outdir, "throughput-%s.svg" % label), "msgs/s, %s messages, one connection per message" % label,
              "msgs/s (log)", thr, True)
        chart(os.path.join(outdir, "cpu-%s.svg" % label), "CPU per message of the server under test, %s" % label,
              "µs per message (log)", cpu, True)


if __name__ == "__main__":
    main()
