"""Bad input: unknown samples are clear errors; hostile values (control characters, invalid
UTF-16 surrogates) leave every export a well-formed file its tools read."""

import json

from pymisp import MISPEvent
from stix2validator import ValidationOptions, validate_file

from conftest import sandscope

SAMPLE_SHA256 = "5" * 64
HOSTILE = "\u0000\u0001\u001b[2J\u007f\u2028 \"'<script>"


def strings(value):
    """Every string inside a parsed JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_unknown_sample_is_a_clear_error(data_dir):
    unknown = "0" * 64
    for command in (["export", "misp", unknown], ["export", "stix", unknown], ["timeline", "--sample", unknown]):
        result = sandscope(*command, "--data", data_dir, check=False)
        assert result.returncode == 1
        assert f"no reports of sample {unknown}" in result.stderr.decode()
        assert result.stdout == b""
    result = sandscope("export", "misp", "not-a-hash", "--data", data_dir, check=False)
    assert result.returncode == 1 and "not a SHA-256" in result.stderr.decode()


def hostile_log(path):
    """A sample that starts a child whose command line, mutex-like pipe and file names carry
    control characters; one line holds a lone UTF-16 surrogate escape."""
    rows = [
        {"EventID": 1, "UtcTime": "2024-03-11 09:00:00.000", "ProcessGuid": "{00000000-0000-0000-0000-000000000001}",
         "ProcessId": "100", "Image": "C:\\Users\\lab\\Downloads\\sample.exe",
         "CommandLine": "\"C:\\Users\\lab\\Downloads\\sample.exe\"",
         "ParentProcessGuid": "{00000000-0000-0000-0000-000000000000}", "ParentProcessId": "1",
         "ParentImage": "C:\\Windows\\explorer.exe", "Hashes": f"SHA256={SAMPLE_SHA256.upper()}"},
        {"EventID": 1, "UtcTime": "2024-03-11 09:00:01.000", "ProcessGuid": "{00000000-0000-0000-0000-000000000002}",
         "ProcessId": "101", "Image": "C:\\Windows\\System32\\cmd.exe",
         "CommandLine": f"cmd.exe /c echo {HOSTILE}",
         "ParentProcessGuid": "{00000000-0000-0000-0000-000000000001}", "ParentProcessId": "100",
         "ParentImage": "C:\\Users\\lab\\Downloads\\sample.exe"},
        {"EventID": 11, "UtcTime": "2024-03-11 09:00:02.000", "ProcessGuid": "{00000000-0000-0000-0000-000000000002}",
         "ProcessId": "101", "Image": "C:\\Windows\\System32\\cmd.exe",
         "TargetFilename": f"C:\\Users\\lab\\AppData\\Local\\Temp\\drop{HOSTILE}.txt"},
        {"EventID": 13, "UtcTime": "2024-03-11 09:00:03.000", "ProcessGuid": "{00000000-0000-0000-0000-000000000002}",
         "ProcessId": "101", "Image": "C:\\Windows\\System32\\cmd.exe", "EventType": "SetValue",
         "TargetObject": "HKU\\S-1-5-21-1-2-3-1001\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\x",
         "Details": f"run {HOSTILE}"},
    ]
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            row.update({"Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "LAB-PC"})
            f.write(json.dumps(row) + "\n")
        # JSON escapes of a lone high and a lone low surrogate: not UTF-8 when decoded.
        f.write('{"EventID": 22, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "LAB-PC", '
                '"UtcTime": "2024-03-11 09:00:04.000", "ProcessGuid": "{00000000-0000-0000-0000-000000000002}", '
                '"ProcessId": "101", "Image": "C:\\\\Windows\\\\System32\\\\cmd.exe", '
                '"QueryName": "bad\\ud800name\\udc00.example", "QueryResults": "::ffff:192.0.2.1;"}\n')


def test_hostile_values_never_break_an_export(tmp_path):
    log = tmp_path / "hostile.json"
    hostile_log(log)
    data = tmp_path / "data"
    sandscope("ingest", "--data", data, "--sha256", SAMPLE_SHA256, log, check=False)
    shown = json.loads(sandscope("show", "--data", data, SAMPLE_SHA256).stdout)["data"]
    text = json.dumps(shown)
    assert "\\u0001" in text, "the hostile command line did not reach the report"

    misp = tmp_path / "e.misp.json"
    sandscope("export", "misp", SAMPLE_SHA256, "--data", data, "--out", misp)
    event = MISPEvent()
    event.load(misp.read_text(encoding="utf-8"))
    values = [a.value for o in event.objects for a in o.attributes]
    assert any(HOSTILE in str(v) for v in values)

    stix = tmp_path / "e.stix.json"
    sandscope("export", "stix", SAMPLE_SHA256, "--data", data, "--out", stix)
    results = validate_file(str(stix), ValidationOptions(strict=True, enforce_refs=True, version="2.1", disabled=["network-traffic-ports"]))
    assert results.is_valid
    assert any(HOSTILE in value for value in strings(json.loads(stix.read_text(encoding="utf-8"))))

    for fmt in ("timesketch", "csv"):
        out = tmp_path / f"t.{fmt}"
        result = sandscope("timeline", log, "--no-sigma", "--format", fmt, "--out", out, check=False)
        # The reader refuses the line with lone surrogates (one warning, exit 3); the rest stays.
        assert result.returncode == 3, result.stderr
        assert b"invalid JSON" in result.stderr
        raw = out.read_bytes()
        raw.decode("utf-8")  # strict: never invalid UTF-8
        assert b"\x00" not in raw and b"\x01" not in raw and b"\x1b" not in raw
        if fmt == "timesketch":
            lines = [json.loads(line) for line in raw.decode().splitlines()]  # U+2028 is escaped: no extra lines
            assert len(lines) == 4
            assert any(HOSTILE in line.get("CommandLine", "") for line in lines)
