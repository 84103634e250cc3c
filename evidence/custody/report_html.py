"""The custody report as a page a court clerk can read: a continuity statement.

Plain HTML, no script beyond the embedded machine-readable report, no third-party assets.
"""

from __future__ import annotations

import html
import json
from typing import Any

from audit import canonical
from evidence.custody.actions import Action

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#111}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.3rem .5rem;vertical-align:top;text-align:left}
th{background:#eee}code,.hash{font-family:ui-monospace,monospace;font-size:.85em;word-break:break-all}
.note{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:.85em;background:#f6f6f6;padding:.5rem}
"""



def render(report: dict[str, Any]) -> str:
    item = report["item"]
    e = html.escape
    rows = [
        ("Case", item["case"]),
        ("Exhibit reference", item["exhibit"] or "—"),
        ("Original filename", item["filename"]),
        ("Size", f"{item['size']:,} bytes"),
        *[(f"{name.upper()}", item["hashes"][name]) for name in sorted(item["hashes"])],
        ("Officer's SHA-256", item["client_sha256"] or "not supplied"),
        ("State", item["state"] + (f" ({item['reason']})" if item["reason"] else "")),
        ("Item id", item["id"]),
    ]
    facts = "".join(f"<tr><th scope=row>{e(k)}</th><td class=hash>{e(str(v))}</td></tr>" for k, v in rows)
    warnings = "".join(f"<li>{e(w)}</li>" for w in item["warnings"])
    rows_by_seq = {
        p["seq"]: "<tr><td>{seq}</td><td>{time}</td><td>{who}</td><td>{what}</td><td><code>{details}</code></td></tr>".format(
            seq=p["seq"],
            time=e(p["entry"]["time"]),
            who=e(p["entry"]["actor"]),
            what=e(_label(p["entry"]["action"])),
            details=e(json.dumps(p["entry"]["details"], ensure_ascii=False, sort_keys=True)),
        )
        for p in report["entries"]
    }
    withheld = report.get("withheld", [])
    for w in withheld:
        rows_by_seq[w["seq"]] = (
            "<tr><td>{seq}</td><td colspan=2>withheld from this copy</td><td>{what}</td>"
            "<td>Not shown: {why}. Its leaf hash <code>{leaf}</code> is proven to be in the ledger.</td></tr>"
        ).format(seq=w["seq"], what=e(_label(w["action"])), why=e(w["reason"]), leaf=e(w["leaf_hash"]))
    events = "".join(rows_by_seq[seq] for seq in sorted(rows_by_seq))
    copy_note = (
        f"<p>This is the reviewer's copy. {len(withheld)} event(s) naming server internals (storage locations, "
        "upload identifiers, host names) are withheld: each is listed with its ledger hash and inclusion proof, so "
        "the record shows no gap; auditors hold the full report.</p>"
        if report.get("copy") == "reviewer" else ""
    )
    copies = "".join(
        "<tr><td>{kind}</td><td class=hash>{sha}</td><td>{size:,}</td><td><code>{how}</code></td></tr>".format(
            kind=e(d["kind"]),
            sha=e(d["sha256"]),
            size=d["size"],
            how=e(" ".join(d["method"].get("argv", [])) or json.dumps(d["method"], sort_keys=True)),
        )
        for d in report["derivatives"]
    )
    # The machine-readable report, byte for byte; "</" escaped so it cannot end the script.
    embedded = canonical(report).decode().replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Continuity statement: {e(item['filename'])}</title>
<style>{_STYLE}</style></head><body>
<h1>Continuity statement for exhibit {e(item['exhibit'] or item['filename'])}</h1>
<p>Generated {e(report['generated_at'])} from the custody ledger <code>{e(report['ledger']['origin'])}</code>.
Every event below is proven to be in the ledger by an inclusion proof against the signed checkpoint at the end;
<code>evidence audit verify-report</code> checks this file with the ledger's public key alone.</p>
{copy_note}
<h2>The original</h2><table>{facts}</table>
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
<h2>Chain of custody</h2>
<table><thead><tr><th scope=col>#</th><th scope=col>Time (UTC)</th><th scope=col>Who</th><th scope=col>What</th><th scope=col>Details</th></tr></thead>
<tbody>{events}</tbody></table>
<h2>Working copies</h2>
{f"<table><thead><tr><th scope=col>Kind</th><th scope=col>SHA-256</th><th scope=col>Bytes</th><th scope=col>How it was made</th></tr></thead><tbody>{copies}</tbody></table>" if copies else "<p>None.</p>"}
<h2>Signed checkpoint</h2><p class=note>{e(report['checkpoint'])}</p>
<p>Ledger public key: <code>{e(report['ledger']['public_key'])}</code></p>
<script type="application/json" id="custody-report">{embedded}</script>
</body></html>
"""


def _label(action: str) -> str:
    """The words for a recorded action; an action no longer known is shown as recorded."""
    try:
        return Action(action).label
    except ValueError:
        return action
