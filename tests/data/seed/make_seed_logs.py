#!/usr/bin/env python3
"""Writes the two seed situations of issue 5 as Windows Sysmon XML exports (the shape
`wevtutil qe Microsoft-Windows-Sysmon/Operational /f:xml` and Event Viewer's "Save as XML"
produce: an <Events> root holding one <Event> per record, with the standard <System> envelope).
The events are written by hand for tests; no real malware run produced them. Re-run to regenerate."""
import hashlib
from xml.sax.saxutils import escape

NS = "http://schemas.microsoft.com/win/2004/08/events/event"
PROVIDER = '<Provider Name="Microsoft-Windows-Sysmon" Guid="{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"/>'
VERSIONS = {1: 5, 3: 5, 11: 2, 22: 5, 23: 5, 26: 5}


def event(record, eid, utc, computer, data):
    created = utc.replace(" ", "T") + "1234Z"
    fields = "".join(
        f'<Data Name="{k}"/>' if v == "" else f'<Data Name="{k}">{escape(v)}</Data>' for k, v in data
    )
    return (
        f'<Event xmlns="{NS}"><System>{PROVIDER}<EventID>{eid}</EventID><Version>{VERSIONS[eid]}</Version>'
        f"<Level>4</Level><Task>{eid}</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>"
        f'<TimeCreated SystemTime="{created}"/><EventRecordID>{record}</EventRecordID><Correlation/>'
        f'<Execution ProcessID="2956" ThreadID="3720"/><Channel>Microsoft-Windows-Sysmon/Operational</Channel>'
        f'<Computer>{computer}</Computer><Security UserID="S-1-5-18"/></System><EventData>{fields}</EventData></Event>'
    )


def process_create(utc, guid, pid, image, cmd, cwd, user, hashes, pguid, ppid, pimage, pcmd):
    return [
        ("RuleName", "-"), ("UtcTime", utc), ("ProcessGuid", guid), ("ProcessId", str(pid)), ("Image", image),
        ("FileVersion", "-"), ("Description", "-"), ("Product", "-"), ("Company", "-"), ("OriginalFileName", "-"),
        ("CommandLine", cmd), ("CurrentDirectory", cwd.rstrip("\\") + "\\"), ("User", user),
        ("LogonGuid", "{a570a8c2-2e34-68ca-1e3a-030000000000}"), ("LogonId", "0x33a1e"), ("TerminalSessionId", "1"),
        ("IntegrityLevel", "Medium"), ("Hashes", hashes), ("ParentProcessGuid", pguid), ("ParentProcessId", str(ppid)),
        ("ParentImage", pimage), ("ParentCommandLine", pcmd), ("ParentUser", user),
    ]


def file_create(utc, guid, pid, image, target, user):
    return [("RuleName", "-"), ("UtcTime", utc), ("ProcessGuid", guid), ("ProcessId", str(pid)), ("Image", image),
            ("TargetFilename", target), ("CreationUtcTime", utc), ("User", user)]


def file_delete(utc, guid, pid, image, target, user, hashes, archived):
    d = [("RuleName", "-"), ("UtcTime", utc), ("ProcessGuid", guid), ("ProcessId", str(pid)), ("User", user),
         ("Image", image), ("TargetFilename", target), ("Hashes", hashes), ("IsExecutable", "false")]
    if archived is not None:
        d.append(("Archived", archived))
    return d


def write(name, computer, events):
    with open(name, "w", encoding="utf-8", newline="\r\n") as f:
        f.write('<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n<Events>\n')
        for i, (eid, utc, data) in enumerate(events):
            f.write(event(7001 + i, eid, utc, computer, data) + "\n")
        f.write("</Events>\n")


def guid(host_part, utc, serial):
    import calendar, time
    t = calendar.timegm(time.strptime(utc[:19], "%Y-%m-%d %H:%M:%S"))
    return "{%s-%04x-%04x-%s}" % (host_part, t & 0xFFFF, t >> 16, serial)


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest().upper()


# --- ransomware: renames documents to <name>.id-<victim>.[decrypt@tutanota.com].eking ---
R_SHA = sha("sandscope seed: ransomware sample")
R_IMG = r"C:\Users\alice\Downloads\invoice_2411.exe"
R_GUID = guid("a570a8c2", "2024-11-25 09:14:03", "5b02-000000000d00")
U = r"DESKTOP-7QK2M1V\alice"
EXPLORER = r"C:\Windows\explorer.exe"
EXPLORER_GUID = guid("a570a8c2", "2024-11-25 08:02:41", "2e00-000000000d00")
ransom = [
    (1, "2024-11-25 09:14:03.118", process_create("2024-11-25 09:14:03.118", R_GUID, 6412, R_IMG, f'"{R_IMG}" ', r"C:\Users\alice\Downloads\\", U,
        f"SHA1={sha('r1')[:40]},MD5={sha('r2')[:32]},SHA256={R_SHA},IMPHASH={sha('r3')[:32]}", EXPLORER_GUID, 4120, EXPLORER, EXPLORER)),
    (1, "2024-11-25 09:14:05.502", process_create("2024-11-25 09:14:05.502", guid("a570a8c2", "2024-11-25 09:14:05", "5d02-000000000d00"), 6520,
        r"C:\Windows\System32\vssadmin.exe", "vssadmin.exe delete shadows /all /quiet", r"C:\Users\alice\Downloads\\", U,
        f"SHA256={sha('vssadmin')}", R_GUID, 6412, R_IMG, f'"{R_IMG}" ')),
]
t = 7
for doc, ext in [("Quarterly report", "docx"), ("budget_2025", "xlsx"), ("IMG_0042", "jpg")]:
    folder = r"C:\Users\alice\Documents" if ext != "jpg" else r"C:\Users\alice\Pictures"
    src = f"{folder}\\{doc}.{ext}"
    dst = f"{src}.id-1E2A7F3C.[decrypt@tutanota.com].eking"
    ts = f"2024-11-25 09:14:{t:02d}.{100 + t:03d}"
    ransom.append((11, ts, file_create(ts, R_GUID, 6412, R_IMG, dst, U)))
    ts2 = f"2024-11-25 09:14:{t:02d}.{400 + t:03d}"
    if ext == "jpg":
        ransom.append((26, ts2, file_delete(ts2, R_GUID, 6412, R_IMG, src, U, f"SHA256={sha(src)}", None)))
    else:
        ransom.append((23, ts2, file_delete(ts2, R_GUID, 6412, R_IMG, src, U, f"SHA256={sha(src)}", "true")))
    t += 2
ts = "2024-11-25 09:14:20.010"
ransom.append((11, ts, file_create(ts, R_GUID, 6412, R_IMG, r"C:\Users\alice\Desktop\info.hta", U)))
write("ransomware_tutanota_sysmon.xml", "DESKTOP-7QK2M1V", ransom)

# --- coinminer: drops %APPDATA%\Microsoft\Telemetry\sihost32.exe and a logon task ---
M_SHA = sha("sandscope seed: coinminer sample")
M_IMG = r"C:\Users\bob\AppData\Local\Temp\setup_x64.exe"
M_GUID = guid("8f3c11d0", "2024-12-02 14:31:10", "a401-000000001200")
DROP = r"C:\Users\bob\AppData\Roaming\Microsoft\Telemetry\sihost32.exe"
UB = r"WIN10-LAB04\bob"
EXPLORER_B = guid("8f3c11d0", "2024-12-02 13:55:27", "3c00-000000001200")
SIHOST_GUID = guid("8f3c11d0", "2024-12-02 14:31:13", "a801-000000001200")
miner = [
    (1, "2024-12-02 14:31:10.250", process_create("2024-12-02 14:31:10.250", M_GUID, 5032, M_IMG, f'"{M_IMG}"',
        r"C:\Users\bob\AppData\Local\Temp\\", UB, f"SHA256={M_SHA}", EXPLORER_B, 3904, EXPLORER, EXPLORER)),
    (11, "2024-12-02 14:31:11.870", file_create("2024-12-02 14:31:11.870", M_GUID, 5032, M_IMG, DROP, UB)),
    (1, "2024-12-02 14:31:12.404", process_create("2024-12-02 14:31:12.404", guid("8f3c11d0", "2024-12-02 14:31:12", "a601-000000001200"), 5140,
        r"C:\Windows\System32\schtasks.exe",
        f'schtasks /create /f /sc onlogon /rl highest /tn "Microsoft\\Windows\\Telemetry\\Sihost" /tr "{DROP}"',
        r"C:\Users\bob\AppData\Local\Temp\\", UB, f"SHA256={sha('schtasks')}", M_GUID, 5032, M_IMG, f'"{M_IMG}"')),
    (11, "2024-12-02 14:31:12.688", file_create("2024-12-02 14:31:12.688", guid("8f3c11d0", "2024-12-02 13:49:05", "1000-000000001200"), 1276,
        r"C:\Windows\system32\svchost.exe", r"C:\Windows\System32\Tasks\Microsoft\Windows\Telemetry\Sihost", r"NT AUTHORITY\SYSTEM")),
    (1, "2024-12-02 14:31:13.015", process_create("2024-12-02 14:31:13.015", SIHOST_GUID, 5188, DROP,
        f'"{DROP}" --donate-level 1 -o pool.supportxmr.com:443 -k --tls', r"C:\Users\bob\AppData\Roaming\Microsoft\Telemetry\\", UB,
        f"SHA256={sha('sihost32')}", M_GUID, 5032, M_IMG, f'"{M_IMG}"')),
    (22, "2024-12-02 14:31:13.402", [("RuleName", "-"), ("UtcTime", "2024-12-02 14:31:13.402"),
        ("ProcessGuid", SIHOST_GUID), ("ProcessId", "5188"), ("QueryName", "pool.supportxmr.com"),
        ("QueryStatus", "0"), ("QueryResults", "::ffff:141.94.96.144;"), ("Image", DROP), ("User", UB)]),
    (3, "2024-12-02 14:31:13.611", [("RuleName", "-"), ("UtcTime", "2024-12-02 14:31:13.611"),
        ("ProcessGuid", SIHOST_GUID), ("ProcessId", "5188"), ("Image", DROP), ("User", UB),
        ("Protocol", "tcp"), ("Initiated", "true"), ("SourceIsIpv6", "false"), ("SourceIp", "10.0.2.15"),
        ("SourceHostname", "WIN10-LAB04"), ("SourcePort", "49733"), ("SourcePortName", "-"), ("DestinationIsIpv6", "false"),
        ("DestinationIp", "141.94.96.144"), ("DestinationHostname", "-"), ("DestinationPort", "443"), ("DestinationPortName", "https")]),
]
write("coinminer_sihost32_sysmon.xml", "WIN10-LAB04", miner)
print(R_SHA.lower(), "ransomware_tutanota_sysmon.xml")
print(M_SHA.lower(), "coinminer_sihost32_sysmon.xml")
