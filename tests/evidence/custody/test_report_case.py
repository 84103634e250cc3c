"""The CASE/UCO export of a custody report: `case_validate` (PyPI case-utils, CASE 1.5.0) accepts
it with no warnings and no undefined concepts, it says what the custody report says, and it is the
same bytes every time."""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import evidence.custody.actions
import evidence.custody.report_case
from evidence.custody.report_case import to_case

ITEM = "9b2c41d0e3a84f5c9a7b1e2d3c4b5a69"
FAILED_ITEM = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ORIGIN = "evidence-transfer/custody-ledger"
OFFICER = "user:pc@force.police.uk"
REVIEWER = "user:zoë.ångström@cps.gov.uk"  # non-ASCII, as names in e-mail addresses can be
WORKER = "system:worker@ingest-01"
SHA256 = hashlib.sha256(b"original").hexdigest()
MD5 = hashlib.md5(b"original", usedforsecurity=False).hexdigest()  # the legacy hashes some tools still ask for
SHA1 = hashlib.sha1(b"original", usedforsecurity=False).hexdigest()
PROXY = hashlib.sha256(b"proxy").hexdigest()
POSTER = hashlib.sha256(b"poster").hexdigest()
PROBE = hashlib.sha256(b"probe").hexdigest()
PROXY_ARGV = [
    "ffmpeg", "-nostdin", "-i", "vault:originals/OP-HALFORD/CCTV 01.mp4", "-map", "0:v:0", "-c:v", "libx264",
    "-preset", "medium", "-crf", "23", "-vf", "scale='min(1280,iw)':-2", "-movflags", "+faststart", "proxy.mp4",
]
POSTER_ARGV = ["ffmpeg", "-ss", "10", "-i", "vault:originals/OP-HALFORD/CCTV 01.mp4", "-frames:v", "1", "poster.jpg"]
FFMPEG_VERSION = "n7.1-static"


def _entries(item: str, steps: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    found = []
    for seq, (action, actor, details) in enumerate(steps, start=3):
        subject = {"case": "OP-HALFORD"} if action == "case.created" else {"case": "OP-HALFORD", "item": item}
        entry = {"seq": seq, "time": f"2026-11-22T21:{seq:02d}:56.123456Z", "actor": actor, "action": action,
                 "subject": subject, "details": details}
        body = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        found.append({"seq": seq, "entry": entry, "body": body,
                      "leaf_hash": hashlib.sha256(b"\x00" + body.encode()).hexdigest(), "proof": ["AAAA"]})
    return found


def _report(item: dict[str, Any], derivatives: list[dict[str, Any]], entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": "evidence-custody-report/1",
        "generated_at": "2026-11-22T21:23:56Z",
        "ledger": {"origin": ORIGIN, "public_key": f"{ORIGIN}+4f2a9c1e+AUQ0mWxdzCqW9e3n9WkHaQ=="},
        "checkpoint": f"{ORIGIN}\n42\nq83vEjRWeJA=\n\n\u2014 {ORIGIN} TyqcHrc1Fw==\n",
        "tree_size": 42,
        "root": "q83vEjRWeJA=",
        "item": item,
        "derivatives": derivatives,
        "entries": entries,
    }


@pytest.fixture
def ready() -> dict[str, Any]:
    """A CCTV export that went all the way: uploaded, hashed, two ffmpeg working copies and a probe, shared, viewed."""
    proxy_method = {"tool": "ffmpeg", "version": FFMPEG_VERSION, "argv": PROXY_ARGV, "remux": False}
    poster_method = {"tool": "ffmpeg", "version": FFMPEG_VERSION, "argv": POSTER_ARGV}
    probe_method = {"tool": "pyav", "version": "14.2.0", "libraries": {"libavcodec": "61.19.100"}}
    derivatives = [
        {"kind": "proxy", "sha256": PROXY, "size": 5_000_000, "content_type": "video/mp4", "method": proxy_method},
        {"kind": "poster", "sha256": POSTER, "size": 40_000, "content_type": "image/jpeg", "method": poster_method},
        {"kind": "probe", "sha256": PROBE, "size": 2_000, "content_type": "application/json", "method": probe_method},
    ]
    hashes = {"sha256": SHA256, "md5": MD5, "sha1": SHA1}
    entries = _entries(ITEM, [
        ("case.created", "operator:root@evidence-01", {"title": "Operation Halford"}),
        ("upload.created", OFFICER, {"filename": "CCTV 01.mp4", "size": 123_456_789}),
        ("upload.completed", OFFICER, {"size": 123_456_789}),
        ("original.stored", WORKER, {"key": "originals/OP-HALFORD/CCTV 01.mp4", "version": "1"}),
        ("original.hashed", WORKER, {"hashes": hashes, "size": 123_456_789}),
        ("integrity.verified", WORKER, {"sha256": SHA256}),
        *[("derivative.created", WORKER, {"kind": d["kind"], "key": f"derivatives/{ITEM}/{d['kind']}",
                                          "sha256": d["sha256"], "size": d["size"], "method": d["method"]})
          for d in derivatives],
        ("link.created", OFFICER, {"to": "zoë.ångström@cps.gov.uk", "download": False}),
        ("link.accessed", REVIEWER, {"ip": "192.0.2.7", "user_agent": "Mozilla/5.0", "what": "proxy"}),
    ])
    item = {"id": ITEM, "case": "OP-HALFORD", "exhibit": "JS/1", "filename": "CCTV 01.mp4", "size": 123_456_789,
            "hashes": hashes, "client_sha256": SHA256, "state": "ready", "reason": None, "kind": "video",
            "media": {"duration": 10800.0}, "warnings": ["variable frame rate"],
            "storage_key": "originals/OP-HALFORD/CCTV 01.mp4"}
    return _report(item, derivatives, entries)


@pytest.fixture
def failed() -> dict[str, Any]:
    """An item with no exhibit reference, only a SHA-256, that failed before any working copy was made."""
    entries = _entries(FAILED_ITEM, [
        ("upload.completed", OFFICER, {"size": 10}),
        ("original.hashed", WORKER, {"hashes": {"sha256": PROBE}, "size": 10}),
        ("item.failed", WORKER, {"reason": "does not decode: moov atom not found"}),
    ])
    item: dict[str, Any] = {"id": FAILED_ITEM, "case": "OP-HALFORD", "exhibit": None, "filename": "export.dav", "size": 10,
            "hashes": {"sha256": PROBE}, "client_sha256": None, "state": "failed",
            "reason": "does not decode: moov atom not found", "kind": "video", "media": {}, "warnings": [],
            "storage_key": f"originals/{FAILED_ITEM}"}
    return _report(item, [], entries)


def _nodes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["@id"]: node for node in document["@graph"]}


def _typed(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [node for node in document["@graph"] if node["@type"] == kind]


def _ids(refs: Any) -> list[str]:
    return [ref["@id"] for ref in (refs if isinstance(refs, list) else [refs])]


def _hashes(nodes: dict[str, dict[str, Any]], file: dict[str, Any]) -> dict[str, str]:
    """{hash method: value} from a File's ContentDataFacet."""
    facets = [nodes[i] for i in _ids(file["uco-core:hasFacet"])]
    (content,) = [f for f in facets if f["@type"] == "uco-observable:ContentDataFacet"]
    found = {}
    for ref in _ids(content.get("uco-observable:hash", [])):
        node = nodes[ref]
        assert node["@type"] == "uco-types:Hash"
        assert node["uco-types:hashValue"]["@type"] == "xsd:hexBinary"
        found[node["uco-types:hashMethod"]] = node["uco-types:hashValue"]["@value"]
    return found


def _original(document: dict[str, Any]) -> dict[str, Any]:
    nodes = _nodes(document)
    records = _typed(document, "case-investigation:ProvenanceRecord")
    (record,) = [r for r in records if r.get("uco-core:description", "").startswith("Item ")]
    (file_id,) = _ids(record["uco-core:object"])
    return nodes[file_id]


def _validate(document: dict[str, Any], path: Path) -> subprocess.CompletedProcess[str]:
    path.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    validator = Path(sys.executable).with_name("case_validate")
    assert validator.exists(), f"{validator} missing: install the test extra (case-utils)"
    return subprocess.run([str(validator), str(path)], check=False, capture_output=True, text=True, timeout=120)


def test_case_validate_accepts_both_documents(ready: dict[str, Any], failed: dict[str, Any], tmp_path: Path) -> None:
    """Default flags (CASE 1.5.0, warnings count): conforms, and no concept outside the ontology."""
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda pair: _validate(to_case(pair[0]), tmp_path / pair[1]),
                             [(ready, "ready.jsonld"), (failed, "failed.jsonld")]))
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Conforms: True" in run.stdout, run.stdout
        # case_validate warns on stderr (and exits 1) about IRIs in the CASE/UCO namespaces that don't exist.
        assert "NonExistentCDOConceptWarning" not in run.stderr and "not in the ontology" not in run.stderr, run.stderr


def test_same_report_same_bytes(ready: dict[str, Any]) -> None:
    first = json.dumps(to_case(ready), sort_keys=True, ensure_ascii=False).encode()
    again = json.dumps(to_case(copy.deepcopy(ready)), sort_keys=True, ensure_ascii=False).encode()
    assert first == again
    # Neither the insertion order of the report's dicts nor a round trip through JSON changes anything.
    shuffled = json.loads(json.dumps(ready))
    shuffled["item"]["hashes"] = dict(reversed(list(shuffled["item"]["hashes"].items())))
    shuffled = {key: shuffled[key] for key in reversed(list(shuffled))}
    assert json.dumps(to_case(shuffled), sort_keys=True, ensure_ascii=False).encode() == first


def test_identifiers_are_urns_of_the_ledger_ending_in_distinct_uuids(ready: dict[str, Any]) -> None:
    document = to_case(ready)
    assert document["@context"]["kb"] == "urn:evidence:evidence-transfer/custody-ledger:"
    ids = [node["@id"] for node in document["@graph"]]
    assert len(ids) == len(set(ids))
    uuids = [i.rsplit("-", 5)[-5:] for i in ids]
    assert len({"-".join(u) for u in uuids}) == len(ids)  # one UUID per node, not per thing described
    other = copy.deepcopy(ready)
    other["ledger"]["origin"] = "another-force/custody-ledger"
    assert not set(ids) & {node["@id"] for node in to_case(other)["@graph"]}


def test_exhibit_number_on_the_provenance_record_of_the_original(ready: dict[str, Any]) -> None:
    document = to_case(ready)
    nodes = _nodes(document)
    records = _typed(document, "case-investigation:ProvenanceRecord")
    (record,) = [r for r in records if "case-investigation:exhibitNumber" in r]
    assert record["case-investigation:exhibitNumber"] == "JS/1"
    assert record["uco-core:objectCreatedTime"] == {"@type": "xsd:dateTime", "@value": "2026-11-22T21:23:56Z"}
    original = _original(document)
    assert original["@type"] == "uco-observable:File" and _ids(record["uco-core:object"]) == [original["@id"]]
    facets = {nodes[i]["@type"]: nodes[i] for i in _ids(original["uco-core:hasFacet"])}
    assert facets["uco-observable:FileFacet"]["uco-observable:fileName"] == "CCTV 01.mp4"
    size = {"@type": "xsd:integer", "@value": "123456789"}
    assert facets["uco-observable:FileFacet"]["uco-observable:sizeInBytes"] == size
    assert facets["uco-observable:ContentDataFacet"]["uco-observable:sizeInBytes"] == size
    # The working copies lead back to the exhibit, and the report's checkpoint and key are referenced.
    assert sum(r.get("case-investigation:rootExhibitNumber") == ["JS/1"] for r in records) == 3
    references = [nodes[i]["uco-core:externalIdentifier"] for i in _ids(record["uco-core:externalReference"])]
    assert ready["checkpoint"] in references and ready["ledger"]["public_key"] in references
    (investigation,) = _typed(document, "case-investigation:Investigation")
    assert investigation["uco-core:name"] == "OP-HALFORD"
    assert record["@id"] in _ids(investigation["uco-core:object"])


def test_every_hash_is_present(ready: dict[str, Any]) -> None:
    document = to_case(ready)
    nodes = _nodes(document)
    assert _hashes(nodes, _original(document)) == {"SHA256": SHA256, "MD5": MD5, "SHA1": SHA1}
    files = _typed(document, "uco-observable:File")
    found = {file["uco-core:name"]: _hashes(nodes, file) for file in files}
    assert found == {
        "CCTV 01.mp4": {"SHA256": SHA256, "MD5": MD5, "SHA1": SHA1},
        "proxy working copy of CCTV 01.mp4": {"SHA256": PROXY},
        "poster working copy of CCTV 01.mp4": {"SHA256": POSTER},
        "probe working copy of CCTV 01.mp4": {"SHA256": PROBE},
    }


def test_one_investigative_action_per_entry(ready: dict[str, Any]) -> None:
    document = to_case(ready)
    nodes = _nodes(document)
    actions = _typed(document, "case-investigation:InvestigativeAction")
    assert sorted(a["uco-core:name"] for a in actions) == sorted(e["entry"]["action"] for e in ready["entries"])
    by_body = {a["uco-core:description"]: a for a in actions}
    original = _original(document)["@id"]
    for proven in ready["entries"]:
        entry, action = proven["entry"], by_body[proven["body"]]
        # The description is the exact ledger bytes: the leaf hash can be recomputed from the CASE document.
        assert hashlib.sha256(b"\x00" + action["uco-core:description"].encode()).hexdigest() == proven["leaf_hash"]
        when = {"@type": "xsd:dateTime", "@value": entry["time"]}
        assert action["uco-action:startTime"] == action["uco-action:endTime"] == when
        performer = nodes[action["uco-action:performer"]["@id"]]
        assert performer["uco-core:name"] == entry["actor"]
        system = entry["actor"].startswith("system:")
        assert performer["@type"] == ("uco-tool:Tool" if system else "uco-identity:Identity")
        (reference,) = [nodes[i] for i in _ids(action["uco-core:externalReference"])]
        assert reference["uco-core:externalIdentifier"] == f"{entry['seq']}:{proven['leaf_hash']}"
        if entry["action"] in ("upload.completed", "original.stored"):
            assert _ids(action["uco-action:result"]) == [original]
        elif entry["action"] != "case.created":
            assert _ids(action["uco-action:object"]) == [original]
    # Each actor is one node, however many entries name them.
    assert len(_typed(document, "uco-identity:Identity")) == 3


def test_non_ascii_actor_is_kept_exactly(ready: dict[str, Any]) -> None:
    document = to_case(ready)
    (reviewer,) = [n for n in _typed(document, "uco-identity:Identity") if n["uco-core:name"] == REVIEWER]
    actions = _typed(document, "case-investigation:InvestigativeAction")
    (viewed,) = [a for a in actions if a["uco-core:name"] == "link.accessed"]
    assert viewed["uco-action:performer"] == {"@id": reviewer["@id"]}
    assert json.loads(json.dumps(document, ensure_ascii=True)) == document


def test_derivatives_made_with_the_recorded_ffmpeg_command(ready: dict[str, Any]) -> None:
    document = to_case(ready)
    nodes = _nodes(document)
    original = _original(document)["@id"]
    actions = _typed(document, "case-investigation:InvestigativeAction")
    made = [a for a in actions if a["uco-core:name"] == "derivative.created"]
    assert len(made) == 3
    argvs = {}
    for action in made:
        assert _ids(action["uco-action:object"]) == [original]
        (result,) = [nodes[i] for i in _ids(action["uco-action:result"])]
        (tool,) = [nodes[i] for i in _ids(action["uco-action:instrument"])]
        assert tool["@type"] == "uco-tool:ConfiguredTool"
        base = nodes[tool["uco-configuration:isConfigurationOf"]["@id"]]
        assert base["@type"] == "uco-tool:Tool"
        assert (base["uco-core:name"], base["uco-tool:version"]) == (tool["uco-core:name"], tool["uco-tool:version"])
        configuration = nodes[tool["uco-configuration:usesConfiguration"]["@id"]]
        entries = [nodes[i] for i in _ids(configuration["uco-configuration:configurationEntry"])]
        argv = {int(e["uco-configuration:itemName"][5:-1]): e["uco-configuration:itemValue"]
                for e in entries if e["uco-configuration:itemName"].startswith("argv[")}
        kind = result["uco-core:name"].split()[0]
        argvs[(kind, base["uco-core:name"], base["uco-tool:version"])] = [argv[i] for i in sorted(argv)]
    assert argvs == {
        ("proxy", "ffmpeg", FFMPEG_VERSION): PROXY_ARGV,
        ("poster", "ffmpeg", FFMPEG_VERSION): POSTER_ARGV,
        ("probe", "pyav", "14.2.0"): [],
    }
    # One plain Tool per tool and version, whatever number of command lines configure it.
    tools = [t["uco-core:name"] for t in _typed(document, "uco-tool:Tool") if "uco-tool:version" in t]
    assert sorted(tools) == ["ffmpeg", "pyav"]


def test_no_exhibit_no_derivatives_failed(failed: dict[str, Any]) -> None:
    document = to_case(failed)
    text = json.dumps(document)
    assert "exhibitNumber" not in text and "ExhibitNumber" not in text
    assert not _typed(document, "uco-tool:ConfiguredTool")
    (record,) = _typed(document, "case-investigation:ProvenanceRecord")
    assert record["uco-core:name"] == f"Item {FAILED_ITEM}"
    assert "state failed" in record["uco-core:description"]
    assert "Reason: does not decode: moov atom not found" in record["uco-core:description"]
    assert _hashes(_nodes(document), _original(document)) == {"SHA256": PROBE}
    names = [a["uco-core:name"] for a in _typed(document, "case-investigation:InvestigativeAction")]
    assert sorted(names) == ["item.failed", "original.hashed", "upload.completed"]


def test_bad_reports_are_refused(failed: dict[str, Any]) -> None:
    broken = copy.deepcopy(failed)
    broken["item"]["hashes"]["md5"] = "not hex"
    with pytest.raises(ValueError, match="not hexadecimal"):
        to_case(broken)
    broken = copy.deepcopy(failed)
    del broken["ledger"]["origin"]
    with pytest.raises(ValueError, match="origin"):
        to_case(broken)


def _imports(path: str) -> set[str]:
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return modules | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_imports_only_the_standard_library_and_the_action_names() -> None:
    modules = _imports(evidence.custody.report_case.__file__)
    assert modules - {"evidence.custody.actions"} == {m for m in modules if m.split(".")[0] in STANDARD}
    assert {m.split(".")[0] for m in _imports(evidence.custody.actions.__file__)} <= STANDARD


STANDARD = set(sys.stdlib_module_names) | {"__future__"}
