"""Livehunt and Retrohunt through vt-py, unchanged (issue 17): a ruleset created with
`post_object`, changed with `patch_object`, rulesets and notification files walked with
`iterator`; a retrohunt job posted, polled, and its matching files walked. Rulesets hunt
every report stored after them, so each test uploads a fresh detonation of its own.
"""

import datetime
import json
import re
import time
import urllib.error
import urllib.request
import uuid

import vt

from sysmon_fixtures import SIHOST_QUERY, sihost_run, tutanota_run

RULESETS = "/intelligence/hunting_rulesets"


def client(server):
    return vt.Client(server["key"], host=server["url"])


def upload(server, name, xml):
    """POST one log to /sandscope/ingest as a multipart form; returns the report ids."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/xml\r\n\r\n").encode()
    body += xml.encode() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{server['url']}/api/v3/sandscope/ingest", data=body, method="POST",
        headers={"x-apikey": server["key"],
                 "content-type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=300) as r:
            return [item["id"] for item in json.loads(r.read())["data"]]
    except urllib.error.HTTPError as e:
        raise AssertionError(f"upload refused: {e.code} {e.read()[:500]!r}") from None


def test_a_query_ruleset_notifies_on_the_next_upload_and_is_patched(server):
    with client(server) as c:
        ruleset = vt.Object("hunting_ruleset", obj_attributes={
            "name": "sihost miners",
            "rule_language": "query",
            "rules": f"# sihost32 from AppData\n{SIHOST_QUERY}\n",
            "enabled": True,
            "limit": 100,
        })
        created = c.post_object(RULESETS, obj=ruleset)
        assert created.type == "hunting_ruleset"
        assert created.id.isdigit()
        assert created.rule_names == ["sihost32 from AppData"]
        assert isinstance(created.creation_date, datetime.datetime)

        # Reports stored before the ruleset are not notified; the next one is, before the
        # upload is acknowledged.
        sha, log = sihost_run(4)
        upload(server, "sihost-4.xml", log.xml())
        other, log = tutanota_run(5)
        upload(server, "tutanota-5.xml", log.xml())

        files = list(c.iterator(
            f"{RULESETS}/{created.id}/hunting_notification_files", batch_size=1))
        assert [f.id for f in files] == [sha]
        context = files[0].context_attributes
        assert context["ruleset_id"] == created.id
        assert context["ruleset_name"] == "sihost miners"
        assert context["rule_name"] == "sihost32 from AppData"
        assert isinstance(context["notification_date"], int)

        notifications = list(c.iterator(
            "/intelligence/hunting_notifications",
            params={"filter": f"ruleset_id:{created.id}"}, batch_size=1))
        assert len(notifications) == 1
        assert notifications[0].type == "hunting_notification"
        assert isinstance(notifications[0].date, datetime.datetime)

        # vt-py sends only what changed since the fetch.
        fetched = c.get_object(f"{RULESETS}/{created.id}")
        fetched.enabled = False
        patched = c.patch_object(f"{RULESETS}/{created.id}", obj=fetched)
        assert patched.enabled is False
        sha, log = sihost_run(6)
        upload(server, "sihost-6.xml", log.xml())
        files = list(c.iterator(
            f"{RULESETS}/{created.id}/hunting_notification_files", batch_size=10))
        assert len(files) == 1, "a disabled ruleset never notifies"


def test_rulesets_iterate_across_pages_and_bad_rules_are_api_errors(server):
    with client(server) as c:
        for n in range(3):
            c.post_object(RULESETS, obj=vt.Object("hunting_ruleset", obj_attributes={
                "name": f"paged {n}", "rule_language": "query",
                "rules": "behaviour_files:@tutanota.com", "enabled": False}))
        names = [r.name for r in c.iterator(
            RULESETS, params={"filter": "name:paged", "order": "name"}, batch_size=2)]
        assert names == ["paged 0", "paged 1", "paged 2"]

        bad = vt.Object("hunting_ruleset", obj_attributes={
            "name": "broken", "rule_language": "query", "rules": "ok:1\nbehaviour_files:("})
        try:
            c.post_object(RULESETS, obj=bad)
            raise AssertionError("a bad ruleset must be refused")
        except vt.error.APIError as error:
            assert error.code == "InvalidArgumentError"
            assert "line" in error.message


JOBS = "/intelligence/retrohunt_jobs"
# The tutanota runs delete shadow copies through cmd.exe.
SHADOWS_RULE = """title: Shadow copies deleted from a command line
id: 2b4f6a8c-0e1d-4c3b-9a7f-6e5d4c3b2a19
status: test
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    CommandLine|contains|all:
      - 'vssadmin'
      - 'delete shadows'
  condition: selection
level: high
"""


def test_a_retrohunt_job_is_posted_polled_and_its_matching_files_iterated(server):
    with client(server) as c:
        # A detonation stored before the job: Retrohunt runs over what is already stored.
        sha, log = tutanota_run(7)
        upload(server, "tutanota-7.xml", log.xml())
        miner, log = sihost_run(8)
        upload(server, "sihost-8.xml", log.xml())

        job = c.post_object(JOBS, obj=vt.Object("retrohunt_job", obj_attributes={
            "rules": SHADOWS_RULE, "rule_language": "sigma"}))
        assert job.type == "retrohunt_job"
        assert re.fullmatch(r"\w+-\d+", job.id), "vt-cli keeps only \\w+-\\d+ job ids"
        assert isinstance(job.creation_date, datetime.datetime)

        deadline = time.monotonic() + 120
        while True:
            polled = c.get_object(f"{JOBS}/{job.id}")
            if polled.status in ("finished", "aborted"):
                break
            assert time.monotonic() < deadline, f"job still {polled.status}"
            time.sleep(0.2)
        assert polled.status == "finished"
        assert polled.progress == 100
        assert isinstance(polled.finish_date, datetime.datetime)
        assert polled.num_matches >= 1

        files = list(c.iterator(f"{JOBS}/{job.id}/matching_files", batch_size=1))
        assert len(files) == polled.num_matches
        assert sha in [f.id for f in files]
        assert miner not in [f.id for f in files]
        for f in files:
            assert f.type == "file"
            assert f.context_attributes["rule_name"] == "Shadow copies deleted from a command line"

        jobs = [j.id for j in c.iterator(JOBS, batch_size=1)]
        assert job.id in jobs
        c.post(f"{JOBS}/{job.id}/abort")  # a finished job stays finished
        assert c.get_object(f"{JOBS}/{job.id}").status == "finished"
        c.delete(f"{JOBS}/{job.id}")
        assert job.id not in [j.id for j in c.iterator(JOBS, batch_size=10)]
