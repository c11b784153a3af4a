"""Sysmon logs for the end-to-end suites, written as Windows Event XML (what `wevtutil qe /f:xml`
and Event Viewer's "Save as XML" produce).

The logs model three detonations per seed query of the issue (so searches span several pages at
`limit=2`) and one log whose command line carries an HTML/script payload:

* ransomware runs writing files named after a Tutanota mailbox
  (`behaviour_files:@tutanota.com`), each with its own C2 name and IP;
* a miner dropper starting `…\\AppData\\Microsoft\\Telemetry\\sihost32.exe`
  (`behaviour_processes:"\\"AppData\\\\Microsoft\\\\Telemetry\\\\sihost32.exe\\""`);
* `<img src=x onerror=alert(1)>` in a command line.

The event layout (field names and order) is Sysmon 13's. Run as a script to write the logs and
print the manifest: `python3 sysmon_fixtures.py OUT_DIR`.
"""

import hashlib
import json
import pathlib
import sys
from xml.sax.saxutils import escape, quoteattr

XSS_PAYLOAD = "<img src=x onerror=alert(1)>"
TUTANOTA_QUERY = "behaviour_files:@tutanota.com"
SIHOST_QUERY = 'behaviour_processes:"\\"AppData\\\\Microsoft\\\\Telemetry\\\\sihost32.exe\\""'


def sha256_of(name):
    return hashlib.sha256(f"sandscope e2e fixture {name}".encode()).hexdigest()


class Log:
    def __init__(self, computer, start_seconds):
        self.computer = computer
        self.clock = start_seconds
        self.records = []

    def _time(self):
        self.clock += 1
        seconds = self.clock
        days, rem = divmod(seconds, 86400)
        # 2024-05-01 + days, good enough for fixtures spanning a few days.
        return f"2024-05-{1 + days:02d} {rem // 3600:02d}:{rem % 3600 // 60:02d}:{rem % 60:02d}.000"

    def event(self, event_id, fields):
        utc = self._time()
        # Every time field of one event (UtcTime, CreationUtcTime) carries the event's time.
        fields = [(name, utc if value is None else value) for name, value in fields]
        system_time = utc.replace(" ", "T") + "0000Z"
        data = "".join(
            f"<Data Name={quoteattr(name)}>{escape(str(value))}</Data>" for name, value in fields
        )
        record = len(self.records) + 1
        self.records.append(
            '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">'
            '<System><Provider Name="Microsoft-Windows-Sysmon" '
            'Guid="{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"/>'
            f"<EventID>{event_id}</EventID><Version>5</Version><Level>4</Level>"
            f"<Task>{event_id}</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>"
            f'<TimeCreated SystemTime="{system_time}"/><EventRecordID>{record}</EventRecordID>'
            '<Correlation/><Execution ProcessID="2412" ThreadID="3340"/>'
            "<Channel>Microsoft-Windows-Sysmon/Operational</Channel>"
            f"<Computer>{escape(self.computer)}</Computer>"
            '<Security UserID="S-1-5-18"/></System>'
            f"<EventData>{data}</EventData></Event>"
        )
        return utc

    def process(self, guid, pid, image, command_line, parent_guid, parent_pid, parent_image,
                parent_command_line, sha256, user):
        fields = [
            ("RuleName", "-"), ("UtcTime", None), ("ProcessGuid", guid),
            ("ProcessId", pid), ("Image", image), ("FileVersion", "-"), ("Description", "-"),
            ("Product", "-"), ("Company", "-"), ("OriginalFileName", "-"),
            ("CommandLine", command_line), ("CurrentDirectory", "C:\\Users\\Public\\"),
            ("User", user), ("LogonGuid", "{9f3c1a2b-6b4c-6630-0000-0020e3a10200}"),
            ("LogonId", "0x2a1e3"), ("TerminalSessionId", "1"), ("IntegrityLevel", "Medium"),
            ("Hashes", f"SHA256={sha256.upper()}"), ("ParentProcessGuid", parent_guid),
            ("ParentProcessId", parent_pid), ("ParentImage", parent_image),
            ("ParentCommandLine", parent_command_line), ("ParentUser", user),
        ]
        self.event(1, fields)

    def file_create(self, guid, pid, image, target, user):
        self.event(11, [
            ("RuleName", "-"), ("UtcTime", None), ("ProcessGuid", guid), ("ProcessId", pid),
            ("Image", image), ("TargetFilename", target), ("CreationUtcTime", None), ("User", user),
        ])

    def dns(self, guid, pid, image, name, results, user):
        self.event(22, [
            ("RuleName", "-"), ("UtcTime", None), ("ProcessGuid", guid), ("ProcessId", pid),
            ("QueryName", name), ("QueryStatus", "0"), ("QueryResults", results),
            ("Image", image), ("User", user),
        ])

    def connect(self, guid, pid, image, ip, port, user):
        self.event(3, [
            ("RuleName", "-"), ("UtcTime", None), ("ProcessGuid", guid), ("ProcessId", pid),
            ("Image", image), ("User", user), ("Protocol", "tcp"), ("Initiated", "true"),
            ("SourceIsIpv6", "false"), ("SourceIp", "10.0.2.15"), ("SourceHostname", "-"),
            ("SourcePort", "49711"), ("SourcePortName", "-"), ("DestinationIsIpv6", "false"),
            ("DestinationIp", ip), ("DestinationHostname", "-"), ("DestinationPort", str(port)),
            ("DestinationPortName", "-"),
        ])

    def xml(self):
        return ('<?xml version="1.0" encoding="utf-8"?>\n<Events>\n'
                + "\n".join(self.records) + "\n</Events>\n")


EXPLORER = "C:\\Windows\\explorer.exe"
EXPLORER_GUID = "{9f3c1a2b-6b4c-6630-0100-000000000a00}"


def guid(sample, n):
    return "{9f3c1a2b-%04x-6630-%04x-%012x}" % (sample, n, sample * 100 + n)


def tutanota_run(n):
    sha = sha256_of(f"tutanota-{n}")
    log = Log(f"LAB-WIN10-{n}", 3600 * 24 * n + 3600 * 9)
    user = "LAB\\alice"
    sample = f"C:\\Users\\alice\\Downloads\\invoice_{n}.exe"
    g = guid(n, 1)
    log.process(g, 4100 + n, sample, f'"{sample}" /silent', EXPLORER_GUID, 2888, EXPLORER,
                EXPLORER, sha, user)
    cmd = "C:\\Windows\\System32\\cmd.exe"
    log.process(guid(n, 2), 4200 + n, cmd, f"{cmd} /c vssadmin delete shadows /all /quiet",
                g, 4100 + n, sample, f'"{sample}" /silent', sha256_of("cmd"), user)
    log.dns(g, 4100 + n, sample, "mail.tutanota.com", "::ffff:81.3.6.162;", user)
    log.dns(g, 4100 + n, sample, f"c2-{n}.badcdn.example", f"::ffff:203.0.113.{10 + n};", user)
    log.connect(g, 4100 + n, sample, f"203.0.113.{10 + n}", 443, user)
    for doc in ("report.docx", "budget.xlsx"):
        log.file_create(g, 4100 + n, sample,
                        f"C:\\Users\\alice\\Documents\\{doc}.id-{n}A2B.[decrypt@tutanota.com].locked",
                        user)
    log.file_create(g, 4100 + n, sample,
                    "C:\\Users\\alice\\Desktop\\HOW_TO_DECRYPT_decrypt@tutanota.com.txt", user)
    return sha, log


def sihost_run(n):
    sha = sha256_of(f"sihost-{n}")
    log = Log(f"LAB-WIN11-{n}", 3600 * 24 * n + 3600 * 14)
    user = "LAB\\bob"
    sample = f"C:\\Users\\bob\\Downloads\\setup_{n}.exe"
    g = guid(10 + n, 1)
    log.process(g, 5100 + n, sample, f'"{sample}"', EXPLORER_GUID, 2888, EXPLORER, EXPLORER,
                sha, user)
    miner = "C:\\Users\\bob\\AppData\\Microsoft\\Telemetry\\sihost32.exe"
    log.file_create(g, 5100 + n, sample, miner, user)
    log.process(guid(10 + n, 2), 5200 + n, miner,
                f'"{miner}" --pool pool-{n}.minexmr.example:4444 --donate-level 1',
                g, 5100 + n, sample, f'"{sample}"', sha256_of("sihost32"), user)
    log.dns(guid(10 + n, 2), 5200 + n, miner, f"pool-{n}.minexmr.example",
            f"::ffff:198.51.100.{20 + n};", user)
    log.connect(guid(10 + n, 2), 5200 + n, miner, f"198.51.100.{20 + n}", 4444, user)
    return sha, log


def xss_run():
    sha = sha256_of("xss")
    log = Log("LAB-WIN10-X", 3600 * 24 * 5)
    user = "LAB\\carol"
    sample = "C:\\Users\\carol\\Desktop\\xss.exe"
    g = guid(30, 1)
    log.process(g, 6100, sample, f'"{sample}"', EXPLORER_GUID, 2888, EXPLORER, EXPLORER, sha,
                user)
    cmd = "C:\\Windows\\System32\\cmd.exe"
    log.process(guid(30, 2), 6200, cmd, f"{cmd} /c echo {XSS_PAYLOAD} > C:\\Users\\carol\\x.html",
                g, 6100, sample, f'"{sample}"', sha256_of("cmd"), user)
    log.dns(g, 6100, sample, "xss-test.example", "::ffff:192.0.2.55;", user)
    return sha, log


def write_fixtures(out_dir):
    """Write the logs into `out_dir` and return the manifest (what each suite expects)."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"tutanota": [], "sihost": [], "xss": None,
                "queries": {"tutanota": TUTANOTA_QUERY, "sihost": SIHOST_QUERY},
                "xss_payload": XSS_PAYLOAD}
    for n in (1, 2, 3):
        sha, log = tutanota_run(n)
        (out / f"tutanota-{n}.xml").write_text(log.xml(), encoding="utf-8")
        manifest["tutanota"].append(sha)
        sha, log = sihost_run(n)
        (out / f"sihost-{n}.xml").write_text(log.xml(), encoding="utf-8")
        manifest["sihost"].append(sha)
    sha, log = xss_run()
    (out / "xss.xml").write_text(log.xml(), encoding="utf-8")
    manifest["xss"] = sha
    return manifest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: sysmon_fixtures.py OUT_DIR")
    print(json.dumps(write_fixtures(sys.argv[1])))
