"""MISP exports load with PyMISP, and every object validates against its template."""

import json
import pathlib

from pymisp import MISPEvent, MISPObject

import pytest

from conftest import CAPE_RUNS


def load(path):
    event = MISPEvent()
    event.load(pathlib.Path(path).read_text(encoding="utf-8"))
    return event


def test_every_event_loads_and_every_object_validates_strictly(exports, samples):
    for sha256 in samples:
        event = load(exports[("misp", sha256)])
        assert event.uuid and event.info and event.date
        assert event.objects, f"{sha256}: no objects"
        for obj in event.objects:
            # Rebuild the object from the template, strictly, with the exported attributes:
            # unknown relations, missing required ones and forbidden repeats raise here.
            strict = MISPObject(obj.name, strict=True)
            assert obj.template_uuid == strict.template_uuid, obj.name
            assert int(obj.template_version) == int(strict.template_version), obj.name
            for attribute in obj.attributes:
                rebuilt = strict.add_attribute(attribute.object_relation, value=attribute.value)
                # Type and category as PyMISP picks them from the template.
                assert attribute.type == rebuilt.type, (obj.name, attribute.object_relation)
                assert attribute.category == rebuilt.category, (obj.name, attribute.object_relation)
            strict.to_dict(strict=True)


def test_references_resolve_and_use_misp_vocabulary(exports, samples):
    vocabulary = {"analysed-with", "calls", "child-of", "drops", "contacts", "writes", "creates"}
    for sha256 in samples:
        event = load(exports[("misp", sha256)])
        uuids = {o.uuid for o in event.objects}
        for obj in event.objects:
            for reference in obj.references:
                assert reference.object_uuid == obj.uuid
                assert reference.referenced_uuid in uuids, (obj.name, reference.relationship_type)
                assert reference.relationship_type in vocabulary


def tree_nodes(nodes):
    for node in nodes:
        yield node
        yield from tree_nodes(node.get("children", []))


@pytest.mark.parametrize("run", [r.name for r in CAPE_RUNS])
def test_cape_run_objects_and_references_follow_its_two_reports(exports, reports, run):
    run_reports = reports[run]
    sandboxes = sorted(r["attributes"]["sandbox_name"] for r in run_reports)
    assert len(run_reports) == 2, sandboxes
    event = load(exports[("misp", run)])
    by_name = {}
    for obj in event.objects:
        by_name.setdefault(obj.name, []).append(obj)
    by_uuid = {o.uuid: o for o in event.objects}

    # The sample: a file object with its SHA-256, the root of the references.
    sample = by_name["file"][0]
    assert sample.get_attributes_by_relation("sha256")[0].value == run
    out = {}
    for reference in sample.references:
        out.setdefault(reference.relationship_type, []).append(by_uuid[reference.referenced_uuid])

    # One sandbox-report per report.
    reported = sorted(o.get_attributes_by_relation("on-premise-sandbox")[0].value for o in by_name["sandbox-report"])
    assert reported == sorted(s.lower().replace(" ", "-") for s in sandboxes)
    assert {o.uuid for o in out["analysed-with"]} == {o.uuid for o in by_name["sandbox-report"]}

    # One process object per node of each report's tree; roots are called by the sample,
    # every other node is a child-of exactly one process.
    nodes = [n for r in run_reports for n in tree_nodes(r["attributes"].get("processes_tree", []))]
    roots = [n for r in run_reports for n in r["attributes"].get("processes_tree", [])]
    processes = by_name.get("process", [])
    assert len(processes) == len(nodes) > 0
    assert len(out["calls"]) == len(roots)
    children = [p for p in processes if p.references]
    assert len(children) == len(nodes) - len(roots)
    for child in children:
        assert [r.relationship_type for r in child.references] == ["child-of"]
        assert by_uuid[child.references[0].referenced_uuid].name == "process"
    command_lines = sorted(p.get_attributes_by_relation("command-line")[0].value for p in processes)
    # PyMISP strips surrounding white space from values when it loads them.
    assert command_lines == sorted(n["name"].strip() for n in nodes)

    # Network, registry, mutexes and dropped files from the merged behaviour.
    merged = {}
    for r in run_reports:
        for key, value in r["attributes"].items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
    hostnames = {d["hostname"].lower() for d in merged.get("dns_lookups", [])}
    exported_hosts = {
        (o.get_attributes_by_relation("domain") or o.get_attributes_by_relation("hostname"))[0].value.lower()
        for o in by_name.get("domain-ip", [])
    }
    assert exported_hosts == hostnames
    assert {o.uuid for o in out.get("contacts", [])} == {
        o.uuid for o in by_name.get("domain-ip", []) + by_name.get("network-connection", [])
    }
    keys = {k["key"].lower() for k in merged.get("registry_keys_set", [])}
    exported_keys = {o.get_attributes_by_relation("key")[0].value.lower() for o in by_name.get("registry-key", [])}
    assert exported_keys == keys
    mutexes = {m.lower() for m in merged.get("mutexes_created", [])}
    assert {o.get_attributes_by_relation("name")[0].value.lower() for o in by_name.get("mutex", [])} == mutexes
    hashed = {f["sha256"].lower() for f in merged.get("files_dropped", []) if f.get("sha256")}
    dropped = {o.get_attributes_by_relation("sha256")[0].value.lower() for o in out.get("drops", [])}
    assert dropped == hashed

    # ATT&CK techniques as galaxy tags; Sigma hits as attributes naming rule id and level.
    techniques = {t["id"] for r in run_reports for t in r["attributes"].get("mitre_attack_techniques", [])}
    tags = [t.name for t in event.tags]
    for technique in techniques:
        assert any(t.startswith("misp-galaxy:mitre-attack-pattern=") and t.endswith(f'{technique}"') for t in tags), technique
    hits = {(h["rule_id"], h["rule_level"]) for r in run_reports for h in r["attributes"].get("sigma_analysis_results", [])}
    comments = [a.comment for a in event.attributes]
    for rule_id, level in hits:
        assert any(rule_id in c and f"level {level}" in c for c in comments), rule_id


def test_api_serves_the_cli_bytes(server, exports, samples):
    from conftest import get

    for sha256 in samples:
        status, headers, body = get(server, f"/api/v3/sandscope/export/misp/{sha256}")
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert headers["Content-Disposition"] == f'attachment; filename="{sha256}.misp.json"'
        assert body == exports[("misp", sha256)].read_bytes()
        json.loads(body)


def test_the_runs_raise_sigma_hits_and_techniques(reports):
    """The run tests above check hits and techniques: make sure there are some to check."""
    runs = [reports[r.name] for r in CAPE_RUNS]
    assert any(h for rs in runs for r in rs for h in r["attributes"].get("sigma_analysis_results", []))
    assert any(t for rs in runs for r in rs for t in r["attributes"].get("mitre_attack_techniques", []))
