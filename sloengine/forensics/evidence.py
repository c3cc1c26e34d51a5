"""Evidence bundles: what an auditor takes away — the audit entries of a period, the chain
head, the SLO versions in force, the report files, and a sha256 manifest that
``sha256sum -c MANIFEST.sha256`` checks."""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from sloengine.forensics.audit import AuditEntry, Verdict, entries, verify, verify_chain
from sloengine.store import Store

MANIFEST = "MANIFEST.sha256"


def _write_json(path: Path, obj: Any) -> None:
    path.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def export(store: Store, at_from: datetime, at_to: datetime, out: Path,
           reports_dir: Path | None) -> dict[str, Any]:
    """Write the bundle into ``out`` (created; must be empty)."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        from sloengine.errors import ConfigError

        raise ConfigError("the bundle folder must be empty", where=str(out))
    items = entries(store, at_from, at_to)
    with (out / "audit-entries.jsonl").open("wb") as fh:
        for e in items:
            fh.write(orjson.dumps(e.to_json(), option=orjson.OPT_SORT_KEYS) + b"\n")
    whole = verify(store)
    _write_json(out / "chain-head.json", {
        "head": whole.head, "chain_verified": whole.ok, "problem": whole.problem,
        "entries_in_bundle": len(items), "from": at_from.isoformat(), "to": at_to.isoformat(),
    })
    versions = store.rows(
        "SELECT v.slo_name, v.version, v.origin, v.file, v.first_seen, v.definition, "
        "  (SELECT count(*) FROM slo_evaluations e WHERE e.slo_name = v.slo_name "
        "   AND e.slo_version = v.version AND e.evaluated_at >= ? AND e.evaluated_at < ?) "
        "FROM slo_versions v WHERE v.first_seen < ? ORDER BY v.slo_name, v.first_seen",
        [at_from, at_to, at_to])
    _write_json(out / "slo-versions.json", [
        {"slo": r[0], "version": r[1], "origin": r[2], "file": r[3],
         "first_seen": r[4].isoformat(), "evaluations_in_period": int(r[6]),
         "definition": orjson.loads(r[5])} for r in versions])
    copied = []
    if reports_dir is not None and reports_dir.is_dir():
        for f in sorted(p for p in reports_dir.rglob("*") if p.is_file()):
            mtime = datetime.fromtimestamp(f.stat().st_mtime).astimezone()
            if at_from <= mtime < at_to:
                dest = out / "reports" / f.relative_to(reports_dir)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dest)
                copied.append(str(dest.relative_to(out)))
    lines = []
    for f in sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST):
        lines.append(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.relative_to(out)}")
    (out / MANIFEST).write_text("\n".join(lines) + "\n")
    return {"dir": str(out), "entries": len(items), "head": whole.head,
            "chain_verified": whole.ok, "slo_versions": len(versions), "reports": copied,
            "files": len(lines) + 1}


def verify_bundle(bundle: Path) -> Verdict:
    """Check the manifest, then the chain of the entries inside (it starts wherever the
    period starts: from its first entry's link)."""
    manifest = bundle / MANIFEST
    if not manifest.exists():
        return Verdict(False, 0, None, None, f"{MANIFEST} is missing")
    for line in manifest.read_text().splitlines():
        digest, name = line.split("  ", 1)
        f = bundle / name
        if not f.exists():
            return Verdict(False, 0, None, None, f"{name} is listed but missing")
        if hashlib.sha256(f.read_bytes()).hexdigest() != digest:
            return Verdict(False, 0, None, None, f"{name} does not match the manifest")
    items = []
    for raw in (bundle / "audit-entries.jsonl").read_bytes().splitlines():
        d = orjson.loads(raw)
        items.append(AuditEntry(d["seq"], datetime.fromisoformat(d["at"]), d["actor"],
                                d["action"], d["object"], d["outcome"], d["correlation_id"],
                                d["detail"], d["prev_hash"], d["hash"]))
    if not items:
        return Verdict(True, 0, None)
    return verify_chain(items, start_prev=items[0].prev_hash, start_seq=items[0].seq)
