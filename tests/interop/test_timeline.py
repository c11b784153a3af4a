"""Timelines: Timesketch's required fields on every line, sorted by time, CSV and JSONL read
back by Python's own readers, Sigma hit lines carrying the rule id, bounded memory."""

import csv
import datetime
import json
import subprocess
import sys

from conftest import BINARY, CAPE_RUNS, sandscope

RUN_LOG = CAPE_RUNS[0] / "Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx"
# tests/data/README.md's inventory: the run's Sysmon log holds 78 Sysmon events.
RUN_LOG_EVENTS = 78
REQUIRED = ("message", "datetime", "timestamp_desc")


def parse_time(text):
    value = datetime.datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"no offset in {text!r}"
    return value


def check_lines(lines):
    times = []
    for line in lines:
        for field in REQUIRED:
            assert line.get(field), (field, line)
        times.append(parse_time(line["datetime"]))
    assert times == sorted(times)
    return times


def jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(text) for text in f]


def test_timesketch_lines_of_a_log(tmp_path):
    out = tmp_path / "run.jsonl"
    sandscope("timeline", RUN_LOG, "--out", out)
    lines = jsonl(out)
    check_lines(lines)
    events = [l for l in lines if l["timestamp_desc"] == "Event Time"]
    hits = [l for l in lines if l["timestamp_desc"] == "Sigma Hit"]
    assert len(events) == RUN_LOG_EVENTS
    assert len(events) + len(hits) == len(lines)
    assert all(e["event_id"] and e["computer"] for e in events)
    for hit in hits:
        assert hit["rule_id"] and hit["rule_level"] and hit["message"] == hit["rule_title"]


def test_csv_and_jsonl_round_trip(tmp_path):
    sandscope("timeline", RUN_LOG, "--format", "jsonl", "--out", tmp_path / "t.jsonl")
    sandscope("timeline", RUN_LOG, "--format", "csv", "--out", tmp_path / "t.csv")
    lines = jsonl(tmp_path / "t.jsonl")
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    check_lines(rows)
    assert len(rows) == len(lines)
    for row, line in zip(rows, lines):
        for field in (*REQUIRED, "rule_id", "computer", "Image", "CommandLine", "TargetFilename"):
            expected = line.get(field, "")
            assert row[field] == (expected if isinstance(expected, str) else json.dumps(expected)), field


def test_stored_sample_timeline(sample_timeline):
    lines = jsonl(sample_timeline)
    check_lines(lines)
    assert sum(1 for l in lines if l["timestamp_desc"] == "Event Time") == RUN_LOG_EVENTS


def synthetic_log(path, events):
    """`events` process-creation events in flat JSON rows, newest first (the worst order for
    a sorter), with control characters in the command lines."""
    start = datetime.datetime(2024, 3, 11, 9, 0, tzinfo=datetime.timezone.utc)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(events):
            time = start + datetime.timedelta(milliseconds=events - i)
            f.write(json.dumps({
                "EventID": 1,
                "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": "LAB-PC",
                "EventRecordID": i + 1,
                "UtcTime": time.strftime("%Y-%m-%d %H:%M:%S.") + f"{time.microsecond // 1000:03d}",
                "ProcessGuid": "{%08x-0000-0000-0000-000000000000}" % i,
                "ProcessId": str(1000 + i % 50000),
                "Image": "C:\\Windows\\System32\\cmd.exe",
                "CommandLine": f"cmd.exe /c echo {i}\u0001\u001b[31m,\"quoted\"\n",
                "ParentImage": "C:\\Windows\\explorer.exe",
            }) + "\n")


def peak_rss_kib(args):
    """Run the binary in a child Python that reports its children's peak resident set."""
    probe = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
             "assert r.returncode == 0, r.returncode\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    result = subprocess.run([sys.executable, "-c", probe, BINARY, *map(str, args)],
                            capture_output=True, text=True, check=True)
    return int(result.stdout.strip())


def test_hundreds_of_thousands_of_events_in_bounded_memory(tmp_path):
    small, big = 20_000, 300_000
    synthetic_log(tmp_path / "small.json", small)
    synthetic_log(tmp_path / "big.json", big)
    common = ["--no-sigma", "--format", "csv", "--lines-in-memory", "10000"]
    small_rss = peak_rss_kib(["timeline", tmp_path / "small.json", *common, "--out", tmp_path / "small.csv"])
    big_rss = peak_rss_kib(["timeline", tmp_path / "big.json", *common, "--out", tmp_path / "big.csv"])
    print(f"peak RSS: {small} events {small_rss} KiB, {big} events {big_rss} KiB")
    # Fifteen times the events, (almost) the same memory.
    assert big_rss < small_rss * 1.5 + 32 * 1024, (small_rss, big_rss)
    with open(tmp_path / "big.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == big
    check_lines(rows)
    # Newest-first input comes out oldest first: the last record is the first line.
    assert rows[0]["record_id"] == str(big) and rows[-1]["record_id"] == "1"
    # Control characters are escaped in CSV, never raw.
    assert "\\u0001\\u001b[31m" in rows[0]["CommandLine"]
