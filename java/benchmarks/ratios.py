#!/usr/bin/env python3
"""Reads a JMH JSON result of java/benchmarks and prints zcbuf/Netty ratios.

Benchmark methods are named side_workload[_variant] with side 'zcbuf' or 'netty'. Rows of one
class with the same workload and the same parameters are compared: every zcbuf variant against
every Netty variant. All benchmarks run in average-time mode, so a ratio below 1 means zcbuf is
faster.

After the table (not with --markdown), one line per pair in the form every zcbuf bench prints and scripts/plot-ratios.py
plots: `RATIO <name> <value> [<aim>]`, e.g. `RATIO CompositeRandomAccess.getLong.LARGE.1024000 0.54 <=1.0`.
The aims are those of the project's issue (Java reads and gather writes); other rows have none.

    python3 ratios.py target/jmh-result.json [--markdown]
"""
import json
import sys
from collections import OrderedDict


def fmt_score(score, error):
    if score >= 100:
        return f"{score:,.0f} ± {error:,.0f}"
    return f"{score:.2f} ± {error:.2f}"


# (benchmark, {param: value} that must match, zcbuf variant or None, Netty variant or None) -> aim
AIMS = [
    ("CompositeRandomAccess.setGetLong", {"shape": "LARGE", "size": "64"}, None, None, "<=1.0"),
    ("CompositeRandomAccess.getLong", {"shape": "LARGE", "size": "1024000"}, None, None, "<=1.0"),
    ("CompositeSequential.forEachByte", {"size": "64"}, None, None, "<=1.0"),
    ("CompositeBuild.build", {}, None, None, "<=1.0"),
    ("GatherWrite.gatherWrite", {}, "writer", "nioBuffers", "<=0.9"),
]


def aim_for(bench, params, zv, nv):
    for name, want, zvar, nvar, aim in AIMS:
        if name != bench or any(params.get(k) != v for k, v in want.items()):
            continue
        if (zvar is None or zvar == zv) and (nvar is None or nvar == nv):
            return aim
    return ""


def ratio_name(bench, params, zv, nv):
    parts = [bench] + [str(v) for _, v in sorted(params.items())]
    if zv != "-" or nv != "-":
        parts.append(f"{zv if zv != '-' else 'zcbuf'}-vs-{nv if nv != '-' else 'netty'}")
    return ".".join(parts)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in argv
    if len(args) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(args[0]) as f:
        rows = json.load(f)

    groups = OrderedDict()
    for row in rows:
        cls, method = row["benchmark"].rsplit(".", 1)
        cls = cls.rsplit(".", 1)[-1].removesuffix("Benchmark")
        side, _, rest = method.partition("_")
        if side not in ("zcbuf", "netty") or not rest:
            continue
        workload, _, variant = rest.partition("_")
        params = row.get("params", {})
        key = (cls, workload, tuple(sorted(params.items())))
        m = row["primaryMetric"]
        err = m.get("scoreError")
        if not isinstance(err, (int, float)) or err != err:  # NaN when there is a single iteration
            err = 0.0
        groups.setdefault(key, {"zcbuf": [], "netty": []})[side].append(
            (variant or "-", m["score"], err, m["scoreUnit"]))

    header = ["benchmark", "params", "zcbuf", "zcbuf score", "Netty", "Netty score", "zcbuf/Netty"]
    table = []
    ratio_lines = []
    missing = []
    for (cls, workload, params), sides in groups.items():
        p = " ".join(f"{k}={v}" for k, v in params)
        if not sides["zcbuf"] or not sides["netty"]:
            missing.append(f"{cls}.{workload} {p}")
            continue
        for zv, zs, ze, zu in sides["zcbuf"]:
            for nv, ns, ne, nu in sides["netty"]:
                ratio = zs / ns if ns else float("inf")
                pd = dict(params)
                aim = aim_for(f"{cls}.{workload}", pd, zv, nv)
                ratio_lines.append(f"RATIO {ratio_name(f'{cls}.{workload}', pd, zv, nv)} {ratio:.3f} {aim}".rstrip())
                table.append([f"{cls}.{workload}", p, zv, f"{fmt_score(zs, ze)} {zu}", nv,
                              f"{fmt_score(ns, ne)} {nu}", f"{ratio:.2f}"])

    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for r in table:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h)
                  for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        print("  ".join("-" * w for w in widths))
        for r in table:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        print()
        print("zcbuf/Netty < 1: zcbuf is faster (average time per operation; lower is better).")
    for m in missing:
        print(f"(no pair for {m}: one side failed or was filtered out)")
    if not markdown:
        print()
        for line in ratio_lines:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
