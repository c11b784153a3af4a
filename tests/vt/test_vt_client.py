"""VirusTotal's own Python client, unchanged, against `sandscope serve` (issue 7 acceptance).

Every call goes through `vt.Client(key, host=...)`: URL building under /api/v3, the X-Apikey
header, cursor iteration in `Client.iterator`, and `APIError` parsing of the error envelope
are vt-py's, not ours.
"""

import datetime
import urllib.parse

import pytest
import vt

from conftest import raw_get

SYSMON = "Microsoft Sysinternals"


def client(server, key=None):
    return vt.Client(key or server["key"], host=server["url"])


def test_behaviours_of_an_ingested_sample(server):
    sha = server["manifest"]["tutanota"][0]
    with client(server) as c:
        reports = list(c.iterator(f"/files/{sha}/behaviours", batch_size=5))
        assert reports, "the ingested sample has behaviour reports"
        sysmon = [r for r in reports if r.sandbox_name == SYSMON]
        assert len(sysmon) == 1
        report = sysmon[0]
        assert report.type == "file_behaviour"
        assert report.id == f"{sha}_{SYSMON}"
        # vt-py turns *_date attributes into datetimes: the server must send Unix seconds.
        assert isinstance(report.analysis_date, datetime.datetime)
        assert any("vssadmin delete shadows" in c for c in report.command_executions)

        # The id has a space; vt-py percent-encodes it in the path.
        same = c.get_object("/file_behaviours/{}", report.id)
        assert same.id == report.id
        assert same.command_executions == report.command_executions


def test_behaviour_summary_and_mitre_trees(server):
    sha = server["manifest"]["tutanota"][1]
    with client(server) as c:
        summary = c.get_data(f"/files/{sha}/behaviour_summary")
        assert isinstance(summary, dict)
        assert "sandbox_name" not in summary and "id" not in summary
        hostnames = {d["hostname"] for d in summary.get("dns_lookups", [])}
        assert "mail.tutanota.com" in hostnames
        file_paths = summary.get("files_written", []) + [
            f.get("path", "") for f in summary.get("files_dropped", [])]
        assert any("@tutanota.com" in f for f in file_paths), file_paths

        trees = c.get_data(f"/files/{sha}/behaviour_mitre_trees")
        assert SYSMON in trees
        tactics = trees[SYSMON]["tactics"]
        assert isinstance(tactics, list)
        for tactic in tactics:
            assert {"id", "name", "techniques"} <= set(tactic)


@pytest.mark.parametrize("family", ["tutanota", "sihost"])
def test_seed_queries_iterate_across_pages(server, family):
    query = server["manifest"]["queries"][family]
    expected = set(server["manifest"][family])
    with client(server) as c:
        # batch_size=2 with three matching samples: vt-py must follow meta.cursor.
        iterator = c.iterator("/intelligence/search", params={"query": query}, batch_size=2)
        found = [obj.id for obj in iterator]
        assert expected <= set(found), (query, found)
        assert len(found) == len(set(found)), "no sample twice across pages"
        for other in server["manifest"]["tutanota" if family == "sihost" else "sihost"]:
            assert other not in found

        first = c.get_json("/intelligence/search", params={"query": query, "limit": 2})
        assert len(first["data"]) == 2
        assert first["meta"]["total_hits"] >= 3
        assert first["meta"]["cursor"]
        assert "cursor=" in first["links"]["next"]
        assert all(item["type"] == "file" for item in first["data"])


def test_descriptors_only_search(server):
    query = server["manifest"]["queries"]["tutanota"]
    with client(server) as c:
        body = c.get_json("/intelligence/search",
                          params={"query": query, "descriptors_only": "true", "limit": 10})
        assert body["data"]
        for item in body["data"]:
            assert set(item) == {"type", "id"}


def test_unknown_report_is_a_not_found_api_error(server):
    with client(server) as c:
        with pytest.raises(vt.error.APIError) as error:
            c.get_object("/file_behaviours/{}", "f" * 64 + "_" + SYSMON)
        assert error.value.code == "NotFoundError"
        with pytest.raises(vt.error.APIError) as error:
            c.get_data(f"/files/{'e' * 64}/behaviour_summary")
        assert error.value.code == "NotFoundError"


def test_bad_query_is_a_bad_request_with_the_parser_message(server):
    with client(server) as c:
        with pytest.raises(vt.error.APIError) as error:
            c.get_json("/intelligence/search", params={"query": 'behaviour_files:"unterminated'})
        assert error.value.code == "BadRequestError"
        assert error.value.message


def test_missing_or_wrong_key_is_401(server):
    query = urllib.parse.urlencode({"query": server["manifest"]["queries"]["tutanota"]})
    status, content_type, body = raw_get(f"{server['url']}/api/v3/intelligence/search?{query}")
    assert status == 401
    assert content_type == "application/json"
    assert body["error"]["code"] == "AuthenticationRequiredError"

    with client(server, key="not-the-right-key") as c:
        with pytest.raises(vt.error.APIError) as error:
            c.get_object("/file_behaviours/{}", f"{server['manifest']['xss']}_{SYSMON}")
        assert error.value.code == "WrongCredentialsError"

    status, _, body = raw_get(f"{server['url']}/api/v3/sandscope/health")
    assert status == 200, "the health check needs no key"


def test_the_scheme_is_the_one_asked_for(server):
    """With SANDSCOPE_TLS=1 every call of this suite went over HTTPS (certificate verified
    against the test CA); plain HTTP to the same port gets no API answer."""
    import http.client
    port = int(urllib.parse.urlsplit(server["url"]).port)
    if server["tls"]:
        assert server["url"].startswith("https://")
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            plain.request("GET", "/api/v3/sandscope/health")
            response = plain.getresponse()
            # rustls answers a plaintext request with a TLS alert, never with HTTP.
            assert response.status != 200
            raise ConnectionError(f"plain HTTP got status {response.status}")
    else:
        assert server["url"].startswith("http://")
    with client(server) as c:
        hits = list(c.iterator("/intelligence/search",
                               params={"query": "behaviour_files:@tutanota.com"}, limit=20))
        assert sorted(h.id for h in hits) == sorted(server["manifest"]["tutanota"])
