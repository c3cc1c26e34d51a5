"""The audit trail: a hash chain that catches edited, deleted and reordered entries; evidence
bundles with a sha256 manifest; the read-only, audited `sloengine sql`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_cli

from sloengine.engine import Engine
from sloengine.errors import QueryRefused
from sloengine.forensics import audit
from sloengine.forensics.evidence import verify_bundle
from sloengine.settings import load_settings

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _engine(tmp_path: Path) -> Engine:
    ticks = iter(T + timedelta(seconds=i) for i in range(10_000))
    return Engine(load_settings(None, db=tmp_path / "a.duckdb", reports_dir=tmp_path / "r"),
                  clock=lambda: next(ticks), actor="alice", correlation_id="c-1")


def _filled(tmp_path: Path) -> Engine:
    e = _engine(tmp_path)
    for i in range(6):
        e.audit("test.action", f"object-{i}", "ok", {"n": i})
    return e


def test_chain_verifies_and_records_who_what_when(tmp_path: Path) -> None:
    e = _filled(tmp_path)
    v = e.audit_verify()
    assert (v.ok, v.entries) == (True, 6)
    rows = e.store.rows("SELECT seq, actor, action, object, outcome, correlation_id "
                        "FROM audit_log ORDER BY seq")
    assert rows[0] == (1, "alice", "test.action", "object-0", "ok", "c-1")
    assert rows[-1][2] == "audit.verify"  # the verification itself is audited


def test_edited_entry_is_caught(tmp_path: Path) -> None:
    e = _filled(tmp_path)
    e.store.exec_("UPDATE audit_log SET object = 'object-x' WHERE seq = 3")
    v = audit.verify(e.store)
    assert (v.ok, v.first_bad_seq) == (False, 3)
    assert v.problem == "entry 3 was altered: its content does not match its hash"


def test_edited_detail_is_caught(tmp_path: Path) -> None:
    e = _filled(tmp_path)
    e.store.exec_("UPDATE audit_log SET detail = '{\"n\": 99}' WHERE seq = 5")
    assert audit.verify(e.store).first_bad_seq == 5


def test_deleted_entry_is_caught(tmp_path: Path) -> None:
    e = _filled(tmp_path)
    e.store.exec_("DELETE FROM audit_log WHERE seq = 4")
    v = audit.verify(e.store)
    assert (v.ok, v.first_bad_seq) == (False, 4)
    assert "entry 4 is missing" in (v.problem or "")


def test_deleted_and_renumbered_entries_are_caught(tmp_path: Path) -> None:
    e = _filled(tmp_path)
    e.store.exec_("DELETE FROM audit_log WHERE seq = 4")
    e.store.exec_("UPDATE audit_log SET seq = seq - 1 WHERE seq > 4")
    v = audit.verify(e.store)
    assert (v.ok, v.first_bad_seq) == (False, 4)
    assert v.problem == "entry 4 does not link to the entry before it"


def test_reordered_entries_are_caught(tmp_path: Path) -> None:
    e = _filled(tmp_path)
    e.store.exec_("UPDATE audit_log SET seq = CASE seq WHEN 2 THEN 3 WHEN 3 THEN 2 END "
                  "WHERE seq IN (2, 3)")
    v = audit.verify(e.store)
    assert (v.ok, v.first_bad_seq) == (False, 2)


def test_truncated_tail_is_caught_against_the_head(tmp_path: Path) -> None:
    e = _filled(tmp_path)
    head = e.store.meta(audit.HEAD_KEY)
    e.store.exec_("DELETE FROM audit_log WHERE seq >= 5")
    v = audit.verify(e.store, expected_head=head)
    assert (v.ok, v.first_bad_seq) == (False, 5)
    assert "newest entries were removed" in (v.problem or "")


def test_evidence_bundle_and_tampering(tmp_path: Path) -> None:
    e = _filled(tmp_path)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "report.html").write_text("<html>report</html>")
    out = tmp_path / "bundle"
    res = e.audit_export(T - timedelta(hours=1), datetime.now(UTC) + timedelta(days=1), out)
    assert res["entries"] == 6 and res["chain_verified"]
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["MANIFEST.sha256", "audit-entries.jsonl", "chain-head.json",
                     "reports/report.html", "slo-versions.json"]
    assert verify_bundle(out).ok
    lines = (out / "audit-entries.jsonl").read_text().splitlines()
    d = json.loads(lines[2])
    d["actor"] = "mallory"
    lines[2] = json.dumps(d)
    (out / "audit-entries.jsonl").write_text("\n".join(lines) + "\n")
    v = verify_bundle(out)
    assert (v.ok, v.problem) == (False, "audit-entries.jsonl does not match the manifest")


def test_sql_is_read_only_and_audited(tmp_path: Path) -> None:
    db = tmp_path / "q.duckdb"
    Engine(load_settings(None, db=db)).close()
    ok = run_cli("sql", "SELECT 40 + 2 AS answer", "--db", str(db), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"schema": "sloengine.sql/v1", "columns": ["answer"],
                                     "rows": [[42]]}
    for stmt, kind in [("DELETE FROM audit_log", "DELETE"), ("DROP TABLE spans", "DROP"),
                       ("ATTACH 'other.duckdb' AS o", "ATTACH"),
                       ("COPY spans TO 'x.csv'", "COPY"), ("INSTALL httpfs", "LOAD"),
                       ("SELECT 1; DELETE FROM spans", None)]:
        p = run_cli("sql", stmt, "--db", str(db))
        assert p.returncode == 2, stmt
        if kind:
            assert f"{kind} statements are refused" in p.stderr, p.stderr
    p = run_cli("sql", "SELECT * FROM read_text('/etc/hostname')", "--db", str(db))
    assert p.returncode == 2 and "disabled by configuration" in p.stderr
    e = Engine(load_settings(None, db=db))
    rows = e.store.rows("SELECT action, outcome, detail->>'query' FROM audit_log "
                        "WHERE action = 'sql' ORDER BY seq")
    assert rows[0] == ("sql", "ok", "SELECT 40 + 2 AS answer")
    assert [r[1] for r in rows[1:]] == ["refused"] * 7
    assert audit.verify(e.store).ok
    e.close()


def test_user_query_refuses_in_process(tmp_path: Path) -> None:
    from sloengine.store import Store

    db = tmp_path / "x.duckdb"
    Store(db).close()
    with Store(db, sandboxed=True) as s, pytest.raises(QueryRefused):
        s.user_query("UPDATE spans SET name = 'x'")
