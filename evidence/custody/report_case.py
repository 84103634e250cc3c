"""An item's custody report as CASE/UCO JSON-LD (CASE 1.5.0 / UCO 1.5.0, what `case_validate` 0.18 checks).

A pure transformation of the report dict that `evidence.custody.report` builds; it imports
nothing else from the project but the names of the custody actions. The graph says:

- the original is a ``uco-observable:File`` with a ``FileFacet`` (original file name, size) and a
  ``ContentDataFacet`` holding one ``uco-types:Hash`` per algorithm; each working copy is a File of
  its own with its hash, size and media type;
- a ``case-investigation:ProvenanceRecord`` carries the exhibit number and points at the original
  (``uco-core:object``), and at the signed checkpoint the report is proven against; each working copy
  has its own record whose ``rootExhibitNumber`` leads back to the exhibit;
- every custody entry is a ``case-investigation:InvestigativeAction`` (name = the ledger action,
  start = end = its time, performer = who did it) whose description is the entry's canonical bytes,
  so the leaf hash can be recomputed from the CASE document alone;
- ``derivative.created`` actions take the original as ``object``, the working copy as ``result`` and
  the tool as ``instrument``: a ``uco-tool:ConfiguredTool`` (the exact ffmpeg command line as
  ordered ``ConfigurationEntry`` items ``argv[0]``, ``argv[1]``...) configuring the plain
  ``uco-tool:Tool`` (name and version).

Node identifiers are UUIDv5s in a namespace derived from the ledger origin, so the same report
always gives the same document (and the same bytes under ``json.dumps(..., sort_keys=True)``).
UCO asks for identifiers ending in a UUID; `kb:` expands to ``urn:evidence:<origin>:``.
"""

from __future__ import annotations

import json
import re
import shlex
import uuid
from typing import Any
from urllib.parse import quote

from evidence.custody.actions import Action

CONTEXT: dict[str, str] = {
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-configuration": "https://ontology.unifiedcyberontology.org/uco/configuration/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

# Report hash names -> UCO HashNameVocab members.
HASH_METHODS = {
    "md5": "MD5",
    "sha1": "SHA1",
    "sha224": "SHA224",
    "sha256": "SHA256",
    "sha384": "SHA384",
    "sha512": "SHA512",
}

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
# Actions whose ledger subject creates the original rather than acting on it.
_CREATES_ORIGINAL = frozenset({Action.UPLOAD_COMPLETED, Action.ORIGINAL_STORED})


def base_iri(origin: str) -> str:
    """What ``kb:`` stands for: a URN naming the ledger the report comes from."""
    return "urn:evidence:" + quote(origin, safe="-._~/") + ":"


def to_case(report: dict[str, Any]) -> dict[str, Any]:
    """The CASE/UCO JSON-LD document (``@context`` + ``@graph``) for one item's custody report.

    Raises ValueError when the report lacks what the graph is named after (ledger origin, item id)
    or carries a hash that is not hexadecimal (it would make an ill-typed ``xsd:hexBinary``)."""
    ledger = report.get("ledger") or {}
    item = report.get("item") or {}
    origin, item_id = ledger.get("origin"), item.get("id")
    if not isinstance(origin, str) or not origin:
        raise ValueError("report has no ledger origin")
    if not isinstance(item_id, str) or not item_id:
        raise ValueError("report has no item id")
    graph = _Graph(origin)
    context = {**CONTEXT, "kb": base_iri(origin)}

    original = graph.file(
        ("original", item_id),
        name=item.get("filename"),
        filename=item.get("filename"),
        size=item.get("size"),
        hashes=item.get("hashes") or {},
        content_type=None,
    )
    exhibit = item.get("exhibit")
    record = graph.add({
        "@id": graph.iri("ProvenanceRecord", ("item", item_id)),
        "@type": "case-investigation:ProvenanceRecord",
        "uco-core:name": f"Exhibit {exhibit}" if exhibit else f"Item {item_id}",
        "uco-core:description": _item_statement(item),
        "uco-core:object": [original],
        "uco-core:externalReference": _checkpoint_references(graph, report, origin),
        **({"case-investigation:exhibitNumber": exhibit} if exhibit else {}),
        **({"uco-core:objectCreatedTime": _datetime(report["generated_at"])} if report.get("generated_at") else {}),
    })

    derivatives: dict[tuple[str, str], dict[str, str]] = {}
    for made in report.get("derivatives") or []:
        derivatives[(made["kind"], made["sha256"])] = _derivative(graph, item, exhibit, made)

    actions = []
    for proven in report.get("entries") or []:
        entry = proven["entry"]
        details = entry.get("details") or {}
        subject = entry.get("subject") or {}
        node: dict[str, Any] = {
            "@id": graph.iri("InvestigativeAction", ("entry", entry["seq"])),
            "@type": "case-investigation:InvestigativeAction",
            "uco-core:name": entry["action"],
            "uco-core:description": proven.get("body") or json.dumps(entry, sort_keys=True, ensure_ascii=False),
            "uco-action:startTime": _datetime(entry["time"]),
            "uco-action:endTime": _datetime(entry["time"]),
            "uco-action:performer": graph.actor(entry["actor"]),
            "uco-core:externalReference": [graph.add({
                "@id": graph.iri("ExternalReference", ("entry", entry["seq"])),
                "@type": "uco-core:ExternalReference",
                "uco-core:definingContext": f"{origin} (RFC 9162 leaf index and leaf hash)",
                "uco-core:externalIdentifier": f"{entry['seq']}:{proven.get('leaf_hash', '')}",
            })],
        }
        if entry["action"] == Action.DERIVATIVE_CREATED:
            key = (details.get("kind", ""), details.get("sha256", ""))
            made = derivatives.get(key)
            if made is None and details.get("sha256"):
                made = derivatives[key] = _derivative(graph, item, exhibit, details)
            node["uco-action:object"] = [original]
            if made is not None:
                node["uco-action:result"] = [made["file"]]
                node["uco-action:instrument"] = [made["tool"]]
        elif subject.get("item") == item_id:
            role = "uco-action:result" if entry["action"] in _CREATES_ORIGINAL else "uco-action:object"
            node[role] = [original]
        actions.append(graph.add(node))

    case = item.get("case")
    if case:
        graph.add({
            "@id": graph.iri("Investigation", ("case", case)),
            "@type": "case-investigation:Investigation",
            "uco-core:name": case,
            "uco-core:object": sorted(
                [record, original, *(made["file"] for made in derivatives.values()), *actions],
                key=lambda ref: ref["@id"],
            ),
        })
    return {"@context": context, "@graph": [graph.nodes[key] for key in sorted(graph.nodes)]}


class _Graph:
    """Nodes by @id, with identifiers derived from the ledger origin and a stable key."""

    def __init__(self, origin: str) -> None:
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, base_iri(origin))
        self.nodes: dict[str, dict[str, Any]] = {}

    def iri(self, kind: str, key: tuple[Any, ...]) -> str:
        # JSON of the kind and key: no two nodes share a UUID, whatever their strings hold.
        return f"kb:{kind}-{uuid.uuid5(self._namespace, json.dumps([kind, *key], ensure_ascii=False))}"

    def add(self, node: dict[str, Any]) -> dict[str, str]:
        self.nodes.setdefault(node["@id"], node)
        return {"@id": node["@id"]}

    def file(
        self, key: tuple[str, ...], *, name: str | None, filename: str | None, size: int | None,
        hashes: dict[str, str], content_type: str | None,
    ) -> dict[str, str]:
        facets = []
        file_facet: dict[str, Any] = {"@id": self.iri("FileFacet", key), "@type": "uco-observable:FileFacet"}
        if filename:
            file_facet["uco-observable:fileName"] = filename
        if size is not None:
            file_facet["uco-observable:sizeInBytes"] = _integer(size)
        facets.append(self.add(file_facet))
        content: dict[str, Any] = {"@id": self.iri("ContentDataFacet", key), "@type": "uco-observable:ContentDataFacet"}
        if size is not None:
            content["uco-observable:sizeInBytes"] = _integer(size)
        if content_type:
            content["uco-observable:mimeType"] = content_type
        found = [self._hash(key, algorithm, value) for algorithm, value in sorted(hashes.items()) if value]
        if found:
            content["uco-observable:hash"] = found
        facets.append(self.add(content))
        node: dict[str, Any] = {
            "@id": self.iri("File", key), "@type": "uco-observable:File", "uco-core:hasFacet": facets,
        }
        if name:
            node["uco-core:name"] = name
        return self.add(node)

    def _hash(self, key: tuple[str, ...], algorithm: str, value: str) -> dict[str, str]:
        method = HASH_METHODS.get(algorithm.lower())
        if method is None:
            raise ValueError(f"hash algorithm {algorithm!r} has no UCO HashNameVocab name")
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise ValueError(f"{algorithm} value {value!r} is not hexadecimal")
        return self.add({
            "@id": self.iri("Hash", (*key, method)),
            "@type": "uco-types:Hash",
            # A HashNameVocab member typed xsd:string: UCO 1.4+ warns on any other datatype here.
            "uco-types:hashMethod": method,
            "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": value.lower()},
        })

    def actor(self, actor: str) -> dict[str, str]:
        """A person's account is an Identity; ``system:<component>`` (``system:<component>@<host>`` in
        older entries) is software, so a Tool."""
        if actor.startswith("system:"):
            return self.add({
                "@id": self.iri("Tool", ("actor", actor)),
                "@type": "uco-tool:Tool",
                "uco-core:name": actor,
                "uco-tool:toolType": "evidence-transfer system component",
            })
        return self.add({
            "@id": self.iri("Identity", ("actor", actor)),
            "@type": "uco-identity:Identity",
            "uco-core:name": actor,
        })

    def tool(self, key: tuple[str, ...], method: dict[str, Any]) -> dict[str, str]:
        """The tool that made a working copy, configured with the exact command line when known."""
        name = str(method.get("tool") or "unknown")
        version = method.get("version")
        tool: dict[str, Any] = {"@id": self.iri("Tool", ("tool", name, version)), "@type": "uco-tool:Tool",
                                "uco-core:name": name}
        if version is not None:
            tool["uco-tool:version"] = str(version)
        base = self.add(tool)
        argv = method.get("argv") or []
        extras = {k: v for k, v in method.items() if k not in ("tool", "version", "argv")}
        if not argv and not extras:
            return base
        items = [(f"argv[{i}]", "commandline-argument", str(arg)) for i, arg in enumerate(argv)]
        items += [(k, "setting", v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False))
                  for k, v in sorted(extras.items())]
        entries = [
            self.add({
                "@id": self.iri("ConfigurationEntry", (*key, item_name)),
                "@type": "uco-configuration:ConfigurationEntry",
                "uco-configuration:itemName": item_name,
                "uco-configuration:itemType": item_type,
                "uco-configuration:itemValue": value,
            })
            for item_name, item_type, value in items
        ]
        configuration: dict[str, Any] = {
            "@id": self.iri("Configuration", key),
            "@type": "uco-configuration:Configuration",
            "uco-configuration:configurationEntry": entries,
        }
        if argv:
            configuration["uco-core:description"] = shlex.join(str(arg) for arg in argv)
        configured = {**tool, "@id": self.iri("ConfiguredTool", key), "@type": "uco-tool:ConfiguredTool",
                      "uco-configuration:isConfigurationOf": base,
                      "uco-configuration:usesConfiguration": self.add(configuration)}
        return self.add(configured)


def _derivative(graph: _Graph, item: dict[str, Any], exhibit: str | None, made: dict[str, Any]) -> dict[str, Any]:
    kind, sha256 = str(made.get("kind") or "derivative"), made["sha256"]
    key = ("derivative", item["id"], kind, sha256)
    label = f"{kind} working copy of {item.get('filename') or item['id']}"
    file = graph.file(key, name=label, filename=None, size=made.get("size"), hashes={"sha256": sha256},
                      content_type=made.get("content_type"))
    record: dict[str, Any] = {
        "@id": graph.iri("ProvenanceRecord", key),
        "@type": "case-investigation:ProvenanceRecord",
        "uco-core:name": label,
        "uco-core:object": [file],
    }
    if exhibit:
        record["case-investigation:rootExhibitNumber"] = [exhibit]
    graph.add(record)
    return {"file": file, "tool": graph.tool(key, made.get("method") or {})}


def _checkpoint_references(graph: _Graph, report: dict[str, Any], origin: str) -> list[dict[str, str]]:
    """Where to check the entries: the signed checkpoint they are proven against and the key."""
    found = []
    for what, value in (("signed checkpoint", report.get("checkpoint")),
                        ("verifier key", (report.get("ledger") or {}).get("public_key"))):
        if value:
            found.append(graph.add({
                "@id": graph.iri("ExternalReference", (what, value)),
                "@type": "uco-core:ExternalReference",
                "uco-core:definingContext": f"{origin} {what}",
                "uco-core:externalIdentifier": value,
            }))
    return found


def _item_statement(item: dict[str, Any]) -> str:
    lines = [f"Item {item['id']}: {item.get('filename')!s}, state {item.get('state')!s}"]
    if item.get("reason"):
        lines.append(f"Reason: {item['reason']}")
    stored, client = (item.get("hashes") or {}).get("sha256"), item.get("client_sha256")
    if client:
        agreement = "matches" if stored and client.lower() == stored.lower() else "differs from"
        lines.append(f"Officer's SHA-256 {client} {agreement} the SHA-256 of the original as stored")
    lines += [f"Warning: {warning}" for warning in item.get("warnings") or []]
    return "\n".join(lines)


def _datetime(value: str) -> dict[str, str]:
    return {"@type": "xsd:dateTime", "@value": value}


def _integer(value: int) -> dict[str, str]:
    if type(value) is not int:
        raise ValueError(f"size {value!r} is not an integer")
    return {"@type": "xsd:integer", "@value": str(value)}
