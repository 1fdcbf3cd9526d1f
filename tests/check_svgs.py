#!/usr/bin/env python3
"""Structural check of the report's figures (standalone SVG files). Every figure must be a
well-formed SVG with its namespace and be either
  - a plot with two labelled axes: non-empty <text class="xlabel"> and <text class="ylabel">, and at
    least two tick labels on each axis (<g class="axis x|y"> ... <text class="tick">), or
  - a heat-map figure with a colour bar: <g class="colorbar"> with at least two tick labels and a label.
Tick labels must be rounded: numbers equally spaced by 1, 2, 2.5 or 5 x 10^k, with no "-0".
Every legend entry (<g class="legend">) holds a line sample and a non-empty text.
Usage: tests/check_svgs.py FILE.svg...   Prints one line per failure and "N figures checked";
exits 1 when any figure fails."""
import math
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def classes(e):
    return (e.get("class") or "").split()


def text_of(e):
    return "".join(e.itertext()).strip()


def number(s):
    return float(s.replace("\u2212", "-"))


def check_ticks(labels, where):
    if any(t in ("-0", "\u22120") or t.startswith(("-0.0", "\u22120.0")) and number(t) == 0 for t in labels):
        return f"{where}: a negative zero among the ticks {labels}"
    try:
        v = [number(t) for t in labels]
    except ValueError:
        return None  # category ticks (cells, frames) need not be numbers
    if len(v) < 2:
        return f"{where}: {len(v)} tick label(s)"
    steps = [b - a for a, b in zip(v, v[1:])]
    s = steps[0]
    if s <= 0 or any(abs(d - s) > 1e-6 * max(1.0, abs(s)) for d in steps):
        return f"{where}: ticks not equally spaced: {labels}"
    m = s / 10 ** math.floor(math.log10(s) + 1e-9)
    if not any(abs(m - k) < 1e-6 for k in (1, 2, 2.5, 5, 10)):
        return f"{where}: tick step {s} is not 1, 2, 2.5 or 5 x 10^k: {labels}"
    return None


def check(path):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        return [f"{path}: not well-formed XML: {e}"]
    if root.tag != NS + "svg":
        return [f"{path}: root element is {root.tag}, expected an svg element in the SVG namespace"]
    errs = []
    texts = [e for e in root.iter(NS + "text")]
    xl = [e for e in texts if "xlabel" in classes(e) and text_of(e)]
    yl = [e for e in texts if "ylabel" in classes(e) and text_of(e)]
    axes = {}
    for g in root.iter(NS + "g"):
        c = classes(g)
        if "axis" in c:
            axes[c[1] if len(c) > 1 else "?"] = [text_of(t) for t in g.iter(NS + "text") if "tick" in classes(t)]
    bars = [g for g in root.iter(NS + "g") if "colorbar" in classes(g)]
    if xl and yl:
        for name in ("x", "y"):
            e = check_ticks(axes.get(name, []), f"{path}: {name} axis")
            if e:
                errs.append(e)
    elif bars:
        for g in bars:
            ticks = [text_of(t) for t in g.iter(NS + "text") if "tick" in classes(t)]
            e = check_ticks(ticks, f"{path}: colour bar")
            if e:
                errs.append(e)
            if not [t for t in g.iter(NS + "text") if "label" in classes(t) and text_of(t)]:
                errs.append(f"{path}: colour bar without a label")
    else:
        errs.append(f"{path}: neither two labelled axes (xlabel {len(xl)}, ylabel {len(yl)}) nor a colour bar")
    for g in root.iter(NS + "g"):
        if "legend" in classes(g):
            if g.find(NS + "line") is None or not text_of(g):
                errs.append(f"{path}: a legend entry without a line sample or text")
    return errs


def main():
    files = sys.argv[1:]
    bad = 0
    for f in files:
        for e in check(f):
            print(e)
            bad += 1
    print(f"{len(files)} figures checked, {bad} problems")
    sys.exit(1 if bad or not files else 0)


if __name__ == "__main__":
    main()
