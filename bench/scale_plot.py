"""Plots bench/scale.sh's results: one SVG per dimension, CPU per scrape against N for
both exporters on log-log axes, and prints each exporter's growth exponent.

Usage: scale_plot.py RESULTS OUTDIR. RESULTS has lines
`dimension exporter N cpu_ms latency_ms anon_kB fds`.
"""
import math
import sys
from collections import defaultdict

COLOURS = {"node_exporter": "#d95f02", "mysqld_exporter": "#7570b3", "shoehub-exporter": "#1b9e77"}


def exponent(points):
    (n0, c0), (n1, c1) = points[0], points[-1]
    if c0 <= 0 or c1 <= 0 or n0 == n1:
        return float("nan")
    return math.log(c1 / c0) / math.log(n1 / n0)


def svg(dim, series, path):
    w, h, pad = 640, 400, 60
    ns = [n for pts in series.values() for n, _ in pts]
    cs = [max(c, 1e-3) for pts in series.values() for _, c in pts]
    lx0, lx1 = math.log10(min(ns)), math.log10(max(ns))
    ly0, ly1 = math.floor(math.log10(min(cs))), math.ceil(math.log10(max(cs)))
    ly1 = max(ly1, ly0 + 1)
    x = lambda n: pad + (math.log10(n) - lx0) / max(lx1 - lx0, 1e-9) * (w - 2 * pad)
    y = lambda c: h - pad - (math.log10(max(c, 1e-3)) - ly0) / (ly1 - ly0) * (h - 2 * pad)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{dim}: CPU per scrape against N (log-log)</text>',
           f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>']
    for e in range(int(ly0), int(ly1) + 1):
        yy = y(10 ** e)
        out.append(f'<line x1="{pad}" y1="{yy}" x2="{w - pad}" y2="{yy}" stroke="#ddd"/>')
        out.append(f'<text x="{pad - 5}" y="{yy + 4}" text-anchor="end">{10 ** e:g} ms</text>')
    for n in sorted(set(ns)):
        out.append(f'<text x="{x(n)}" y="{h - pad + 16}" text-anchor="middle">{n:,}</text>')
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = COLOURS.get(name, "black")
        line = " ".join(f"{x(n):.1f},{y(c):.1f}" for n, c in pts)
        out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for n, c in pts:
            out.append(f'<circle cx="{x(n):.1f}" cy="{y(c):.1f}" r="3" fill="{colour}"/>')
        out.append(f'<text x="{w - pad}" y="{pad + 16 * i}" text-anchor="end" fill="{colour}">'
                   f'{name} (exponent {exponent(pts):.2f})</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    results, outdir = sys.argv[1], sys.argv[2]
    data = defaultdict(lambda: defaultdict(list))
    for line in open(results):
        dim, exporter, n, cpu, *_ = line.split()
        data[dim][exporter].append((int(n), float(cpu)))
    for dim, series in data.items():
        for pts in series.values():
            pts.sort()
        svg(dim, series, f"{outdir}/{dim}.svg")
        for name, pts in sorted(series.items()):
            print(f"{dim}: {name}: growth exponent {exponent(pts):.2f} "
                  f"({pts[0][0]:,} to {pts[-1][0]:,})")
        peer = next(name for name in series if name != "shoehub-exporter")
        ratios = [a[1] / b[1] for a, b in zip(series[peer], series["shoehub-exporter"]) if b[1] > 0]
        if ratios:
            print(f"{dim}: {peer}'s CPU per scrape over this exporter's: "
                  + ", ".join(f"{r:.1f}x" for r in ratios))


main()
