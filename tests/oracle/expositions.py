"""Reads what the textfile oracle test wrote and checks it with the Prometheus project's
own Python parsers, which share no code with the exporter.

Usage: expositions.py DIR. DIR holds one directory per round: `text` and `openmetrics`
(the bodies the exporter answered in each format) and `files/` (the textfiles in place,
if the round had any).
For every round:
  - both bodies parse, the OpenMetrics one with the strict OpenMetrics parser;
  - every file the exporter served (a `node_textfile_mtime_seconds` series names it)
    is in the text body sample for sample: same name, labels and value;
  - every sample of the text body that is not the exporter's own comes from a served file.
Prints one line per problem and exits 1 if there was any.
"""
import math
import os
import re
import sys

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

OWN = ("node_", "shoehub_", "process_", "mysql_", "apt_", "backup_", "probe_")


def samples(families):
    out = []
    for family in families:
        for s in family.samples:
            out.append((s.name, tuple(sorted(s.labels.items())), s.value))
    return out


def key(sample):
    name, labels, value = sample
    # This parser reads a long integer as a Python int; the exporter's values are floats.
    value = float(value)
    return (name, labels, "NaN" if math.isnan(value) else value)


# The grammars' HELP lines, which the parsers above read leniently: OpenMetrics' HELP is
# an escaped string (`\\`, `\"`, `\n`; no bare quote), the text format's knows `\\` and `\n`.
HELP = {
    "openmetrics": re.compile(r'# HELP [a-zA-Z_:][a-zA-Z0-9_:]*( ([^"\\\n]|\\[\\n"])*)?'),
    "text": re.compile(r'# HELP [a-zA-Z_:][a-zA-Z0-9_:]* ([^\\\n]|\\[\\n])*'),
}


def grammar(round_dir, fmt, body):
    return [
        f"{round_dir}: {fmt}: not a HELP line of the grammar: {line!r}"
        for line in body.split("\n")
        if line.startswith("# HELP ") and not HELP[fmt].fullmatch(line)
    ]


def check(round_dir):
    text = open(os.path.join(round_dir, "text"), encoding="utf-8").read()
    om = open(os.path.join(round_dir, "openmetrics"), encoding="utf-8").read()
    problems = grammar(round_dir, "text", text) + grammar(round_dir, "openmetrics", om)
    try:
        body = samples(parse_text(text))
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        return problems + [f"{round_dir}: the text body does not parse: {e!r}"]
    try:
        samples(parse_openmetrics(om))
    except Exception as e:  # noqa: BLE001
        problems.append(f"{round_dir}: the OpenMetrics body does not parse: {e!r}")
    served = {
        dict(labels)["file"]
        for name, labels, _ in body
        if name == "node_textfile_mtime_seconds"
    }
    in_body = {key(s) for s in body}
    from_files = set()
    # A served file this parser cannot read leaves the body's samples without an origin.
    unread = False
    files_dir = os.path.join(round_dir, "files")
    for name in sorted(os.listdir(files_dir)) if os.path.isdir(files_dir) else []:
        path = os.path.join(files_dir, name)
        if path not in served:
            continue
        try:
            mine = samples(parse_text(open(path, encoding="utf-8").read()))
        except Exception:  # noqa: BLE001 - this parser is laxer in places, stricter in others
            unread = True
            continue
        for s in mine:
            from_files.add(key(s))
            if key(s) not in in_body:
                problems.append(f"{path}: served, but {s} is not in the body")
    for s in [] if unread else body:
        if not s[0].startswith(OWN) and key(s) not in from_files:
            problems.append(f"{round_dir}: {s} is in the body but in no served file")
    return problems


def main():
    root = sys.argv[1]
    problems = []
    rounds = sorted(os.listdir(root))
    for r in rounds:
        problems += check(os.path.join(root, r))
    for p in problems:
        print(p)
    print(f"checked {len(rounds)} rounds", file=sys.stderr)
    sys.exit(1 if problems else 0)


main()
