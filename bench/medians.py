"""Medians of a benchmark's result lines, for the bench scripts' summaries.

Each line is "KIND key=value ..." (a value may be NA). Imported by the scripts'
own summaries (load, med, table), or run as

    python3 bench/medians.py RESULTS KEY...

to print the table of medians by kind for the keys named.
"""
import statistics
import sys


def load(path):
    """{kind: [{key: value}, ...]} in the order the kinds first appear."""
    rows = {}
    with open(path) as f:
        for line in f:
            kind, *fields = line.split()
            rows.setdefault(kind, []).append(dict(x.split("=", 1) for x in fields))
    return rows


def med(rows, kind, key):
    """Median of key over kind's lines, NA left out; None when there is none."""
    vals = [float(r[key]) for r in rows[kind] if r.get(key, "NA") != "NA"]
    return statistics.median(vals) if vals else None


def table(rows, keys, kinds=None):
    """A Markdown table: one line per kind, its line count, then the medians."""
    kinds = list(rows) if kinds is None else kinds
    print("| run | n | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for kind in kinds:
        cells = []
        for key in keys:
            v = med(rows, kind, key)
            cells.append("-" if v is None else "%.0f" % v)
        print("| %s | %d | %s |" % (kind, len(rows[kind]), " | ".join(cells)))


if __name__ == "__main__":
    print("\nmedians")
    table(load(sys.argv[1]), sys.argv[2:])
