"""Bulk lead import (``sharetui leads import FILE``, ``sharetui.ops.imports.import_leads``):
every row is checked before anything is written, a bad file names its lines and
changes nothing, each imported lead gets the ``lead.created`` event ``leads add``
writes (so automations on new_lead run for it), refs make a re-import add
nothing, and sales users import only leads they own."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import PG_URL
from sharetui.db.models import AutomationRun, Grant, Lead, OutboxEvent
from sharetui.errors import PermissionDenied
from sharetui.ops import imports
from sharetui.ops.imports import LeadFile, LeadImportError, import_leads

LEADS = [
    {
        "ref": "CRM-1",
        "name": "  Amara Okonkwo ",
        "owner": "priya",
        "email": "amara@mailbox.test",
        "phone": "+44 7700 900107",
        "company": "Brightwater Dental",
        "stage": "qualified",
        "source": "website",
        "fields": {"city": "Manchester", "requested_amount": 320000, "vip": True},
    },
    {"ref": "CRM-2", "name": "Łukasz Żółć", "owner": "Kenji", "company": "Ząb & Syn"},
    {"name": "No Ref Person", "owner": "priya", "stage": "contacted", "fields": {}},
]


def write_file(path: Path, fmt: str, rows: list[dict[str, Any]]) -> Path:
    if fmt == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        keys = ["ref", "name", "owner", "email", "phone", "company", "stage", "source"]
        custom = sorted({k for r in rows for k in r.get("fields") or {}})
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(keys + [f"fields.{k}" for k in custom])
            for r in rows:
                cells = [r.get(k, "") for k in keys]
                cells += [json.dumps(v) if not isinstance(v, str) else v for v in _fields(r, custom)]
                w.writerow(cells)
    return path


def _fields(row: dict[str, Any], keys: list[str]) -> list[Any]:
    return [(row.get("fields") or {}).get(k, "") for k in keys]


def counts() -> tuple[int, int]:
    return Lead.select().count(), OutboxEvent.select().count()


def lead_view(lead: Lead) -> dict[str, Any]:
    return {
        "ref": lead.ref,
        "name": lead.name,
        "owner": lead.owner.username,
        "email": lead.email,
        "phone": lead.phone,
        "company": lead.company,
        "stage": lead.stage,
        "source": lead.source,
        "fields": lead.fields,
    }


def expected_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "ref": row.get("ref"),
        "name": row["name"].strip(),
        "owner": row["owner"].lower(),
        "email": row.get("email", ""),
        "phone": row.get("phone", ""),
        "company": row.get("company", ""),
        "stage": row.get("stage", "new"),
        "source": row.get("source", ""),
        "fields": row.get("fields") or {},
    }


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_round_trip_from_each_format(bank, cli, tmp_path, clock, fmt) -> None:
    before = {lead.id for lead in Lead.select()}
    path = write_file(tmp_path / f"leads.{fmt}", fmt, LEADS)
    result = cli("leads", "import", path, "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert (data["format"], data["rows"], data["created"], data["skipped"]) == (fmt, 3, 3, 0)
    new = list(Lead.select().where(Lead.id.not_in(before)).order_by(Lead.id))
    # File order is id order, and every value arrives as written (names trimmed, defaults filled).
    assert [lead_view(lead) for lead in new] == [expected_view(r) for r in LEADS]
    assert [lead.id for lead in new] == list(range(data["first_id"], data["last_id"] + 1))
    stamp = clock.now().replace(tzinfo=None)
    assert {(lead.created_at, lead.updated_at) for lead in new} == {(stamp, stamp)}
    # The leads are the product's like any other: the owner sees and edits them.
    assert bank.core.access.can("priya", ("lead", new[0].id), "edit")
    shown = cli("leads", "show", new[1].id, "--json", user="kenji").json()
    assert shown["company"] == "Ząb & Syn" and shown["owner"] == "kenji"


def test_each_imported_lead_gets_the_event_leads_add_writes(bank, core) -> None:
    added = core.records.add_lead(name="By hand", owner="priya", actor=bank.admin)
    (by_hand,) = OutboxEvent.select().where(
        OutboxEvent.entity_id == added.id, OutboxEvent.topic == "lead.created"
    )
    report = import_leads(core, LEADS, actor=bank.admin)
    events = list(
        OutboxEvent.select()
        .where(OutboxEvent.topic == "lead.created", OutboxEvent.id > by_hand.id)
        .order_by(OutboxEvent.id)
    )
    ids = list(range(report.first_id, report.last_id + 1))
    assert [e.entity_id for e in events] == ids  # one each, in id order
    raw = dict(core.db.execute_sql("SELECT id, payload FROM outbox").fetchall())
    for event in events:
        lead = Lead.get_by_id(event.entity_id)
        assert (event.entity_type, event.payload) == (
            "lead",
            {"owner_id": lead.owner_id, "actor_id": bank.admin.id},
        )
        assert event.processed_at is None and event.attempts == 0
        assert event.created_at == by_hand.created_at
        # Byte for byte the payload add_lead stores.
        assert raw[event.id] == raw[by_hand.id].replace(str(added.owner_id), str(lead.owner_id))
    # Ids keep counting after the import.
    assert core.records.add_lead(name="After", owner="priya", actor=bank.admin).id > report.last_id


NEW_LEAD_SHARE = """
name = "New leads to daniel"
status = "published"

[trigger]
type = "new_lead"

[[conditions]]
field = "lead.source"
op = "="
value = "partner"

[[actions]]
type = "share_lead"
share_with = "daniel"
duration = "7d"
access = "read"
"""


def test_automations_on_new_lead_run_for_imported_leads(bank, cli, tmp_path) -> None:
    automation = bank.core.automations.add(bank.core.automations.parse(NEW_LEAD_SHARE), actor=bank.admin)
    rows = [
        {"name": f"Partner lead {i}", "owner": "priya", "source": "partner" if i % 2 else "website"}
        for i in range(10)
    ]
    path = write_file(tmp_path / "partners.jsonl", "jsonl", rows)
    result = cli("leads", "import", path, "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["automation_runs"] == {"succeeded": 5, "skipped": 5}  # the conditions picked 5
    partner_ids = {
        lead.id for lead in Lead.select().where(Lead.source == "partner", Lead.name.startswith("Partner"))
    }
    runs = AutomationRun.select().where(AutomationRun.automation == automation.id)
    assert len(runs) == 10
    assert {r.entity_id for r in runs if r.status == "succeeded"} == partner_ids
    shared = Grant.select().where(Grant.user == bank.daniel.id, Grant.state == "active")
    assert {g.entity_id for g in shared} == partner_ids
    assert all(bank.core.access.can("daniel", ("lead", i), "read") for i in partner_ids)
    # Embedded mode left nothing behind for a worker.
    assert OutboxEvent.select().where(OutboxEvent.processed_at.is_null()).count() == 0


BAD_FILES: list[tuple[str, str, str, str]] = [
    # (id, extension, content, what the error says)
    ("no name", "csv", "name,owner\n,priya\n", "line 2: a lead needs a name"),
    ("blank name", "jsonl", '{"name": "  ", "owner": "priya"}\n', "line 1: a lead needs a name"),
    ("no owner", "csv", "name,owner\nAna,\n", "line 2: an owner is required"),
    ("unknown owner", "csv", "name,owner\nAna,priya\nBo,nobody\n", "line 3: unknown owner 'nobody'"),
    ("deactivated owner", "csv", "name,owner\nAna,ben\n", "line 2: owner ben is deactivated"),
    (
        "deactivated owner with a new ref",
        "csv",
        "ref,name,owner\nN1,Ana,ben\n",
        "line 2: owner ben is deactivated",
    ),
    ("unknown column", "csv", "name,owner,colour\nAna,priya,red\n", "line 1: unknown column 'colour'"),
    ("unknown key", "jsonl", '{"name": "A", "owner": "priya", "colour": 1}\n', "unknown field 'colour'"),
    ("email a number", "jsonl", '{"name": "A", "owner": "priya", "email": 5}\n', "email must be text"),
    ("owner a number", "json", '[{"name": "A", "owner": 7}]', "record 1: owner must be a username"),
    (
        "fields a list",
        "jsonl",
        '{"name": "A", "owner": "priya", "fields": [1]}\n',
        "fields must be an object",
    ),
    ("fields column not JSON", "csv", "name,owner,fields\nA,priya,{oops\n", "must hold a JSON object"),
    (
        "fields both ways",
        "csv",
        'name,owner,fields,fields.city\nA,priya,"{""a"": 1}",Leeds\n',
        "not both",
    ),
    (
        "ref twice",
        "csv",
        "ref,name,owner\nR1,A,priya\nR2,B,priya\nR1,C,priya\n",
        "line 4: ref 'R1' appears twice",
    ),
    ("ref a number", "jsonl", '{"ref": 12, "name": "A", "owner": "priya"}\n', "ref must be text"),
    (
        "long ref",
        "jsonl",
        json.dumps({"ref": "r" * 65, "name": "A", "owner": "priya"}),
        "ref is longer than 64",
    ),
    ("long name", "csv", f"name,owner\n{'n' * 201},priya\n", "name is longer than 200"),
    ("long phone", "csv", f"name,owner,phone\nA,priya,{'1' * 65}\n", "phone is longer than 64"),
    ("too many cells", "csv", "name,owner\nA,priya,extra\n", "line 2: 3 cells, the header has 2"),
    ("bad JSON line", "jsonl", '{"name": "A", "owner": "priya"}\n{"name": \n', "line 2: invalid JSON"),
    ("not an object", "jsonl", '{"name": "A", "owner": "priya"}\n[1, 2]\n', "line 2: not a JSON object"),
    ("not an array", "json", '{"name": "A", "owner": "priya"}', "must hold a JSON array"),
    ("array of strings", "json", '["A"]', "record 1: not a JSON object"),
    ("broken JSON", "json", '[{"name": "A",', "invalid JSON at line 1"),
    ("latin-1", "csv", "name,owner\nJos\xe9,priya\n", "not UTF-8 text"),
    (
        "huge number",
        "jsonl",
        '{"name": "A", "owner": "priya", "phone": ' + "9" * 5000 + "}\n",
        "too many digits",
    ),
    (
        "huge number in an array",
        "json",
        '[{"name": "A", "owner": "priya", "x": ' + "9" * 5000 + "}]",
        "too many digits",
    ),
    ("NUL character", "csv", "name,owner\nA\0B,priya\n", "line 2: name contains a NUL character"),
    # JSON escapes decode to text no database stores: a lone surrogate crashed the write
    # after every row had been checked; a NUL in a custom field went in unnoticed.
    (
        "lone surrogate in a name",
        "jsonl",
        '{"name": "ok", "owner": "priya"}\n{"name": "A\\ud800", "owner": "priya"}\n',
        "line 2: name is not UTF-8 text (it holds the lone surrogate \\ud800)",
    ),
    (
        "lone surrogate in a company",
        "json",
        '[{"name": "ok", "owner": "priya"}, {"name": "B", "owner": "priya", "company": "\\udc80"}]',
        "record 2: company is not UTF-8 text",
    ),
    (
        "NUL escape in a custom field",
        "jsonl",
        '{"name": "A", "owner": "priya", "fields": {"city": "Le\\u0000eds"}}\n',
        "line 1: fields.city contains a NUL character",
    ),
    (
        "lone surrogate in a custom field's key",
        "jsonl",
        '{"name": "A", "owner": "priya", "fields": {"ok": 1, "\\udfff": 2}}\n',
        "line 1: fields[key 1] is not UTF-8 text",
    ),
    ("latin-1 on line 3", "csv", "name,owner\nA,priya\nJos\xe9,priya\n", "not UTF-8 text (line 3)"),
]


@pytest.mark.parametrize("case", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_names_the_problem_and_imports_nothing(bank, cli, tmp_path, case) -> None:
    _, ext, content, message = case
    bank.core.users.add("ben", role="sales", actor=bank.admin)
    bank.core.users.deactivate("ben", actor=bank.admin)
    path = tmp_path / f"bad.{ext}"
    path.write_bytes(content.encode("latin-1" if case[0].startswith("latin-1") else "utf-8"))
    before = counts()
    result = cli("leads", "import", path)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stderr.startswith(f"error: {path}") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert counts() == before


def test_escapes_that_decode_to_storable_text_import(bank, cli, tmp_path) -> None:
    """The check for NUL and lone surrogates is exact: a surrogate pair (an emoji), a
    backslash followed by "u0000" and a DEL are text like any other."""
    path = tmp_path / "fine.jsonl"
    path.write_text(
        '{"name": "Smile \\ud83d\\ude00", "owner": "priya", "fields": {"note": "C:\\\\u0000"}}\n'
        '{"name": "Del\\u007f", "owner": "priya", "company": "\\\\ud800"}\n',
        encoding="utf-8",
    )
    result = cli("leads", "import", path, "--json")
    assert result.exit_code == 0, result.stderr
    first = result.json()["first_id"]
    assert Lead.get_by_id(first).name == "Smile \U0001f600"
    assert Lead.get_by_id(first).fields == {"note": "C:\\u0000"}
    assert Lead.get_by_id(first + 1).company == "\\ud800"


def test_every_problem_is_collected_with_its_row(bank, core) -> None:
    rows = [{"name": "ok", "owner": "priya"}] + [{"name": "", "owner": "nobody"}] * 4
    with pytest.raises(LeadImportError) as caught:
        import_leads(core, rows, actor=bank.admin, source="upload")
    assert caught.value.problems == [
        p for i in range(2, 6) for p in (f"row {i}: a lead needs a name", f"row {i}: unknown owner 'nobody'")
    ]
    assert caught.value.message.startswith("upload: row 2: a lead needs a name; row 2: unknown owner")
    assert "(and 3 more problems; nothing imported)" in caught.value.message
    assert Lead.select().count() == 1


def test_reimporting_by_ref_adds_nothing(bank, cli, tmp_path) -> None:
    path = write_file(tmp_path / "leads.csv", "csv", LEADS[:2])
    first = cli("leads", "import", path, "--json").json()
    assert (first["created"], first["skipped"]) == (2, 0)
    before = counts()
    again = cli("leads", "import", path, "--json").json()
    assert (again["created"], again["skipped"], again["first_id"]) == (0, 2, None)
    assert counts() == before
    # A file with old and new rows adds only the new ones; the old ones are left as they are.
    grown = [{**LEADS[0], "name": "Renamed"}, LEADS[1], {"ref": "CRM-3", "name": "New", "owner": "priya"}]
    third = cli("leads", "import", write_file(tmp_path / "grown.jsonl", "jsonl", grown), "--json").json()
    assert (third["created"], third["skipped"]) == (1, 2)
    assert Lead.get(Lead.ref == "CRM-1").name == "Amara Okonkwo"
    assert Lead.get(Lead.ref == "CRM-3").name == "New"
    # Skipped rows need no active owner: the leads stay, a re-import still works.
    assert cli("users", "deactivate", "kenji").exit_code == 0
    assert cli("leads", "import", path, "--json").json()["skipped"] == 2
    # Rows without a ref cannot be matched: they are new leads every time.
    norefs = write_file(tmp_path / "norefs.json", "json", [LEADS[2]])
    assert cli("leads", "import", norefs, "--json").json()["created"] == 1
    assert cli("leads", "import", norefs, "--json").json()["created"] == 1


def test_only_admins_and_sales_managers_import(bank, cli, tmp_path) -> None:
    """DESIGN §9: import is for admins and sales managers (a tester, as marketing, made
    leads owned by daniel with `leads import`, which fired new_lead automations)."""
    mixed = write_file(tmp_path / "mixed.csv", "csv", LEADS[:2])  # priya's and kenji's
    own = write_file(tmp_path / "own.csv", "csv", [LEADS[0]])
    before = counts()
    for who, file in (("priya", own), ("priya", mixed), ("nadia", mixed)):
        refused = cli("leads", "import", file, user=who)
        assert refused.exit_code == 1, refused
        assert "may not import leads" in refused.stderr
    assert counts() == before
    # Managers and admins import for anyone, as with `leads add`.
    assert cli("leads", "import", mixed, "--json", user="ruth").json()["created"] == 2
    other = write_file(tmp_path / "other.jsonl", "jsonl", [{"name": "X", "owner": "kenji"}])
    assert cli("leads", "import", other, "--json").json()["created"] == 1


def test_the_api_refuses_a_sales_actor(bank, core) -> None:
    with pytest.raises(PermissionDenied):
        import_leads(core, [{"name": "X", "owner": "priya"}], actor=bank.priya)
    with pytest.raises(PermissionDenied):
        import_leads(core, [{"name": "X", "owner": "sofia"}], actor=bank.marketing)
    assert Lead.select().where(Lead.name == "X").count() == 0


def test_stdin_and_an_explicit_format(bank, cli) -> None:
    text = "name,owner,fields.score\nFrom Stdin,priya,7\n"
    data = cli("leads", "import", "-", "--json", input=text).json()
    assert (data["file"], data["format"], data["created"]) == ("stdin", "csv", 1)
    assert Lead.get(Lead.name == "From Stdin").fields == {"score": 7}
    lines = '{"name": "Json Line", "owner": "priya"}\n'
    assert cli("leads", "import", "-", "--format", "jsonl", "--json", input=lines).json()["created"] == 1
    # The first character tells JSON from JSON Lines when there is no extension.
    assert (
        cli("leads", "import", "-", "--json", input='[{"name": "Arr", "owner": "priya"}]').json()["format"]
        == "json"
    )
    human = cli("leads", "import", "-", input=text)
    assert human.exit_code == 0 and "imported 1 lead(s)" in human.stdout


def test_a_missing_file_is_bad_input(bank, cli, tmp_path) -> None:
    result = cli("leads", "import", tmp_path / "nope.csv")
    assert result.exit_code == 2 and "nope.csv" in result.stderr


def test_a_failure_while_writing_leaves_nothing_half_imported(bank, core, monkeypatch) -> None:
    """The import is one transaction: a crash after some chunks were written rolls all back."""
    monkeypatch.setattr(imports, "CHUNK", 2)
    before = counts()
    written = []

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage == "write" and done:
            written.append(done)
            if done >= 4:
                raise RuntimeError("power cut")

    rows = [{"name": f"Chunked {i}", "owner": "priya", "ref": f"C{i}"} for i in range(7)]
    with pytest.raises(RuntimeError):
        import_leads(core, rows, actor=bank.admin, progress=progress)
    assert written == [2, 4]  # two chunks had been written ...
    assert counts() == before  # ... and none of them stayed
    report = import_leads(core, rows, actor=bank.admin)
    assert (report.created, report.skipped) == (7, 0)


def test_a_file_streams_through_the_api_with_line_numbers(bank, core, tmp_path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("name,owner\nA,priya\n\nB,priya\nC,\n", encoding="utf-8")
    source = LeadFile(path)
    with pytest.raises(LeadImportError) as caught:
        import_leads(core, source, actor=bank.admin, where=source.where)
    assert caught.value.problems == ["line 5: an owner is required (a username)"]
    stream = io.BytesIO(b'{"name": "S", "owner": "priya"}\n')
    report = import_leads(core, LeadFile(stream, "jsonl"), actor=bank.admin)
    assert report.created == 1 and report.rows == 1


def test_load_imports_leads_through_the_same_path(core, tmp_path) -> None:
    """``sharetui load``: leads.json goes through import_leads (events included) and a
    bad lead names its file and record."""
    from sharetui.errors import DataFileError
    from sharetui.ops.loader import Loader

    (tmp_path / "users.json").write_text(
        json.dumps([{"username": "admin", "role": "admin"}, {"username": "priya", "role": "sales"}])
    )
    rows = [{"ref": f"L{i}", "name": f"Lead {i}", "owner": "priya"} for i in range(5)]
    (tmp_path / "leads.json").write_text(json.dumps(rows))
    report = Loader(core).load(tmp_path, actor=None)
    assert report.created["leads"] == 5
    assert OutboxEvent.select().where(OutboxEvent.topic == "lead.created").count() == 5
    again = Loader(core).load(tmp_path, actor=None)
    assert again.existing["leads"] == 5 and "leads" not in again.created
    rows.append({"ref": "L9", "name": "Bad", "owner": "priya", "stage": 3})
    (tmp_path / "leads.json").write_text(json.dumps(rows))
    with pytest.raises(DataFileError) as caught:
        Loader(core).load(tmp_path, actor=None)
    assert "leads.json record 5 (L9): stage must be text" in caught.value.message
    assert Lead.select().count() == 5


def test_embedded_processing_marks_events_no_automation_reads_in_bulk(bank, core, clock) -> None:
    """What processing each idle event alone would do (processed, one attempt, no run), in
    bulk; events an automation may act on still run, in order, and limits still count."""
    core.automations.process_pending()
    first = import_leads(core, [{"name": f"Early {i}", "owner": "priya"} for i in range(6)], actor=None)
    # Published after the first import: it acts on the second one only.
    rule = NEW_LEAD_SHARE.replace('value = "partner"', 'value = "event"')
    automation = core.automations.add(core.automations.parse(rule), actor=bank.admin)
    later = import_leads(
        core, [{"name": f"Late {i}", "owner": "priya", "source": "event"} for i in range(3)], actor=None
    )
    # An automation outside its window acts on nothing.
    window = NEW_LEAD_SHARE.replace('name = "New leads to daniel"', 'name = "Not yet"').replace(
        'status = "published"', 'status = "published"\nstarts_at = "2027-01-01T00:00:00Z"'
    )
    core.automations.add(core.automations.parse(window), actor=bank.admin)
    done, reports = core.automations.process_pending_counted(limit=4)
    assert (done, reports) == (4, [])  # four of the early ones, nothing ran
    done, reports = core.automations.process_pending_counted()
    assert sorted(r.record for r in reports) == sorted(
        f"lead {i}" for i in range(later.first_id, later.last_id + 1)
    )
    assert {r.automation_id for r in reports} == {automation.id}
    pending = OutboxEvent.select().where(OutboxEvent.processed_at.is_null()).count()
    events = OutboxEvent.select().where(
        OutboxEvent.topic == "lead.created", OutboxEvent.entity_id >= first.first_id
    )
    assert pending == 0 and len(events) == 9
    assert {(e.attempts, e.processed_at) for e in events} == {(1, clock.now().replace(tzinfo=None))}
    assert {g.entity_id for g in Grant.select().where(Grant.user == bank.daniel.id)} == set(
        range(later.first_id, later.last_id + 1)
    )


def _lead_indexes(core) -> list[tuple[str, str]]:
    return core.db.execute_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leads' ORDER BY name"
    ).fetchall()


@pytest.mark.skipif(bool(PG_URL), reason="the bulk-load path is SQLite's")
def test_a_bulk_import_on_sqlite_rebuilds_the_lead_indexes_it_set_aside(bank, core, monkeypatch) -> None:
    """An import that at least doubles the leads table drops their indexes while it writes and
    builds them again before the commit, the same as before; a failure brings them back too."""
    from sharetui.db.connection import SQLITE_PRAGMAS

    monkeypatch.setattr("sharetui.ops.generator.bulk.BULK_INDEX_ROWS", 5)
    indexes = _lead_indexes(core)
    assert len(indexes) >= 4 and "leads_ref" in dict(indexes)
    seen: list[list[tuple[str, str]]] = []

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage == "write" and done:
            seen.append(_lead_indexes(core))
            if fail:
                raise RuntimeError("disk full")

    rows = [{"name": f"Bulk {i}", "owner": "priya", "ref": f"B{i}"} for i in range(8)]
    fail = True
    with pytest.raises(RuntimeError):
        import_leads(core, rows, actor=bank.admin, progress=progress)
    assert seen == [[]]  # set aside while writing ...
    assert _lead_indexes(core) == indexes and Lead.select().count() == 1  # ... and back after the rollback
    fail = False
    report = import_leads(core, rows, actor=bank.admin, progress=progress)
    assert report.created == 8 and _lead_indexes(core) == indexes
    assert core.db.execute_sql("PRAGMA cache_size").fetchone()[0] == SQLITE_PRAGMAS["cache_size"]
    assert core.db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
    # The rebuilt unique index still refuses a second lead with a ref.
    from peewee import IntegrityError

    with pytest.raises(IntegrityError):
        core.records.add_lead(name="Dup", owner="priya", ref="B3", actor=bank.admin)
    # The index is used again: the list sorted by name walks it, and finds the new leads there.
    sql = (
        "SELECT id FROM leads WHERE name COLLATE NOCASE >= 'bulk 3' ORDER BY name COLLATE NOCASE, id LIMIT 1"
    )
    assert "leads_name_nocase_id" in str(core.db.execute_sql("EXPLAIN QUERY PLAN " + sql).fetchall())
    assert Lead.get_by_id(core.db.execute_sql(sql).fetchone()[0]).name == "Bulk 3"


@pytest.mark.skipif(bool(PG_URL), reason="the FTS5 search index is SQLite's")
def test_imported_leads_are_in_the_search_index_and_its_triggers_are_back(bank, core, monkeypatch) -> None:
    """From 1,000 leads the import feeds the search index once instead of a trigger per row:
    afterwards the index holds exactly the leads (FTS5 integrity check), search finds the new
    ones, and the triggers are back, so later edits reach the index as before."""
    from sharetui.db.search import sqlite_has_index
    from sharetui.domain.roles import EntityType

    if not sqlite_has_index(core.db, "leads"):
        pytest.skip("this SQLite has no trigram tokenizer")
    monkeypatch.setattr(imports, "_SEARCH_BULK_ROWS", 3)
    triggers = core.db.execute_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'leads' ORDER BY name"
    ).fetchall()
    assert len(triggers) == 4  # insert, delete, and an update's old and new text (migration 0006)
    rows = [
        {"name": f"Quentin Zyxwv {i}", "owner": "priya", "company": f"Zyxwv Holdings {i}"} for i in range(5)
    ]
    report = import_leads(core, rows, actor=bank.admin)
    assert report.created == 5
    assert (
        core.db.execute_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'leads' ORDER BY name"
        ).fetchall()
        == triggers
    )
    core.db.execute_sql("INSERT INTO leads_search(leads_search, rank) VALUES ('integrity-check', 1)")

    def found(term: str) -> list[int]:
        page = core.access.visible(bank.admin, EntityType.LEAD, search=term, limit=50)
        return sorted(r.values["id"] for r in page.rows)

    assert found("xwv Hold") == list(range(report.first_id, report.last_id + 1))
    assert found("Mira Dem") == [bank.lead.id]  # the old rows are still found too
    core.records.update_record(("lead", report.first_id), actor=bank.admin, values={"name": "Ursula Qwerty"})
    assert found("Qwert") == [report.first_id]
    assert found("Quentin Zyxwv") == list(range(report.first_id + 1, report.last_id + 1))
