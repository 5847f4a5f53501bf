#!/usr/bin/env python3
"""Plot the `RATIO <name> <value> [<aim>]` lines that the benchmarks print.

Each input file (or stdin) is one run; lines that do not start with `RATIO`
are ignored, so a bench's whole output can be passed as it is. The chart has
one row per ratio name and one bar per run, with the aim drawn as a tick and
the bar coloured by whether the aim is met. The aim is written as `>=0.95`,
`<= 1.0` or `>= 1.7x`; a ratio without an aim is drawn grey.

    cargo bench --bench io_zerocopy | tee run1.txt
    python3 scripts/plot-ratios.py --title "io_zerocopy" --out benches/io_zerocopy.svg run1.txt run2.txt

Standard library only, so that it runs wherever the benches run.
"""

import argparse
import html
import math
import os
import re
import sys

AIM = re.compile(r"^\s*(>=|<=|>|<)\s*([0-9.]+)\s*x?\s*$")


def parse(stream):
    """The ratios of one run, in the order they were printed: name -> (value, aim text)."""
    rows = {}
    for line in stream:
        parts = line.split(None, 3)
        if len(parts) < 3 or parts[0] != "RATIO":
            continue
        try:
            value = float(parts[2])
        except ValueError:
            continue
        rows[parts[1]] = (value, parts[3].strip() if len(parts) > 3 else "")
    return rows


def aim_of(text):
    """(operator, bound) of an aim, or None when there is none or it can't be read."""
    m = AIM.match(text or "")
    return (m.group(1), float(m.group(2))) if m else None


def met(value, aim):
    op, bound = aim
    return {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]


def svg(title, runs, labels):
    names = []
    for run in runs:
        names += [n for n in run if n not in names]
    if not names:
        raise SystemExit("plot-ratios: no RATIO lines in the input")
    aims = {}
    for run in runs:
        for name, (_, aim) in run.items():
            aims.setdefault(name, aim_of(aim))
    # A log scale centred on 1.0: a ratio of 0.5 is as far from parity as 2.0,
    # and a 14x row does not flatten the 0.9x rows next to it.
    seen = [v for run in runs for v, _ in run.values() if v > 0] + [a[1] for a in aims.values() if a and a[1] > 0]
    lo, hi = min(seen + [1.0]) / 1.3, max(seen + [1.0]) * 1.3
    # Room for the longest name at the left, and for the title above.
    bar_h, gap, width, right = 14, 10, 520, 140
    left = max(160, 7 * max(len(n) for n in names) + 20)
    total_width = max(left + width + right, 8 * len(title) + 20)
    row_h = bar_h * len(runs) + gap
    height = 60 + row_h * len(names) + 30 + 18 * len(runs)

    def x(v):
        return left + width * (math.log(max(v, lo)) - math.log(lo)) / (math.log(hi) - math.log(lo))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="22" font-size="16" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="10" y="40" fill="#555">ratio on a log scale, bars from 1.0; black tick = aim; '
        "green = aim met, red = not met, grey = no aim</text>",
    ]
    y0 = 55
    one = x(1.0)
    out.append(f'<line x1="{one:.1f}" y1="{y0}" x2="{one:.1f}" y2="{y0 + row_h * len(names)}" '
               'stroke="#999" stroke-dasharray="4,3"/>')
    out.append(f'<text x="{one:.1f}" y="{y0 + row_h * len(names) + 14}" text-anchor="middle" fill="#555">1.0</text>')
    for i, name in enumerate(names):
        y = y0 + i * row_h
        out.append(f'<text x="{left - 8}" y="{y + bar_h * len(runs) / 2 + 4:.1f}" text-anchor="end">'
                   f"{html.escape(name)}</text>")
        aim = aims.get(name)
        for j, run in enumerate(runs):
            if name not in run:
                continue
            value, _ = run[name]
            colour = "#999" if aim is None else ("#3a3" if met(value, aim) else "#c33")
            by = y + j * bar_h
            x0, x1 = sorted((one, x(value)))
            out.append(f'<rect x="{x0:.1f}" y="{by + 1}" width="{max(x1 - x0, 1):.1f}" '
                       f'height="{bar_h - 2}" fill="{colour}" opacity="{1 - 0.25 * j:.2f}"/>')
            out.append(f'<text x="{max(x1, one) + 4:.1f}" y="{by + bar_h - 3}">{value:.3g}'
                       f'{" (run " + str(j + 1) + ")" if len(runs) > 1 else ""}</text>')
        if aim:
            ax = x(aim[1])
            out.append(f'<line x1="{ax:.1f}" y1="{y - 2}" x2="{ax:.1f}" y2="{y + bar_h * len(runs) + 2}" '
                       'stroke="black" stroke-width="2"/>')
            out.append(f'<text x="{left + width + 40}" y="{y + 12}" fill="#555">aim {html.escape(aim[0])} {aim[1]:g}</text>')
    ly = y0 + row_h * len(names) + 30
    for j, label in enumerate(labels):
        out.append(f'<text x="10" y="{ly + 18 * j}" fill="#555">run {j + 1}: {html.escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--title", default="zcbuf benchmark ratios")
    ap.add_argument("--out", required=True, help="the SVG file to write")
    ap.add_argument("inputs", nargs="*", help="one file per run (default: stdin)")
    args = ap.parse_args()
    if args.inputs:
        runs, labels = [], []
        for path in args.inputs:
            with open(path, encoding="utf-8", errors="replace") as f:
                runs.append(parse(f))
            labels.append(os.path.basename(path))
    else:
        runs, labels = [parse(sys.stdin)], ["stdin"]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(svg(args.title, runs, labels))
    print(f"plot-ratios: wrote {args.out} ({sum(len(r) for r in runs)} ratios, {len(runs)} run(s))")


if __name__ == "__main__":
    main()
