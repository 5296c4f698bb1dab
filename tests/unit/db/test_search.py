# ruff: noqa: RUF001, RUF003 - the names and terms are about look-alike letters (ı, i, İ)
"""Search in the lists (filter as you type): the text index changes speed, never results.

On SQLite the index is an FTS5 trigram table per searched table (migrations
0005 and 0006) that narrows the candidates; the exact ``LOWER(column) LIKE``
test still decides. Each check here compares the indexed search with the plain scan
(the index switched off) page by page, in every sort order, for users who see
everything and for sales users who see their own, their group's and what is
shared with them; and checks that the triggers keep the index in step with
inserts, updates and deletes. On PostgreSQL the same results come through
``pg_trgm`` GIN indexes.

Both stores fold case as PostgreSQL's ``lower()`` does, for every alphabet,
and keep accents: the same table of names and terms gives the same answers on
each (regression: on SQLite "Élodie Ünal" was not found by ``Élodie``,
``élodie`` or ``ünal``).
"""

from __future__ import annotations

from typing import Any

import pytest

import sharetui.core.access.listing as listing
from sharetui.core.access import Page
from sharetui.core.service import Core
from sharetui.db import migrations
from sharetui.db.connection import is_sqlite
from sharetui.db.search import SEARCHED, index_table, sqlite_has_index
from sharetui.db.sql import Statement
from sharetui.domain.roles import EntityType

# The owner sort joins users; stage is a folded text key: both on every search plan.
SORTS = ("id", "-id", "name", "-name", "-owner", "stage")

NAMES = [
    # (name, company, email): substrings shared across fields, accents, quotes,
    # LIKE's wildcard characters, and one rare name.
    ("Mira Demir", "Demir Textiles", "mira.demir@demir-textiles.test"),
    ("Ömer Öztürk", "Öztürk Gida", "omer.ozturk@mail.test"),
    ("öMER öztÜrk", "", "omer.ozturk2@mail.test"),
    ("Anna O'Brien", "O'Brien & Sons", "anna.obrien@obrien.test"),
    ('Dave "Deals" Lee', "Lee 50% Off Ltd", "dave_lee@lee50.test"),
    ("Nora Mason", "Masonry_Works", "nora.mason@masonry.test"),
    ("Jens Barnett", "Barnett and Sons", "jens.barnett@barnett.test"),
    ("Willi Szpyra", "", "willi.szpyra@mail.test"),
    ("Sonja Sonnenberg", "Sonnenberg Solar", "sonja@sonnenberg.test"),
    ("Peter Anderson", "Anderson & Anderson", "peter.anderson@aa.test"),
    ("Ana Barnes", "Barnes Bakery", "ana.barnes@barnesbakery.test"),
    ("Back\\slash Person", "Slash\\Co", "back.slash@slash.test"),
    ("Élodie Ünal", "ÇAĞRI Ltd", "elodie@unal.test"),
    ("İpek Işık", "Ærø Shipping", "ipek@isik.test"),
    ("ΣΟΦΊΑ Νικολάου", "Ꮳ Cherokee Arts", "sofia@n.test"),
]

TERMS = [
    "son",  # common: names, companies and emails
    "SON",  # case
    "demir",
    "szpyra",  # rare
    "willi.szpyra",
    "öztürk",  # non-ASCII, as typed
    "ÖZTÜRK",
    "o'brien",  # a quote
    '"deals"',  # double quotes (FTS5 phrase syntax)
    "50%",  # LIKE wildcards are literal
    "_lee",
    "y_w",
    "h\\co",  # the LIKE escape character
    "ann",
    "an",  # short: always a scan
    "a",
    "  barn  ",  # surrounding blanks
    "textiles",
    "nothing-like-this",
    "and sons",
    "Élodie",  # non-ASCII capitals, typed or not
    "élodie",
    "ünal",
    "ÜNAL",
    "elodie",  # accents count, as on PostgreSQL: no match
    "çağrı",
    "ipek",  # İ folds to i
    "ærø",
    "σοφία",
    "νικολάου",
    "ꮳ cherokee",  # a letter FTS5's own tables do not fold
]


@pytest.fixture
def company(bank) -> Any:
    """The bank plus leads with tricky names spread over owners, a few shares, and opportunities."""
    core = bank.core
    owners = [bank.priya, bank.kenji, bank.daniel, bank.sofia, bank.leila]
    daniels = []
    for round_ in range(3):
        for i, (name, company_name, email) in enumerate(NAMES):
            owner = owners[(i + round_) % len(owners)]
            lead = core.records.add_lead(
                name=name if round_ == 0 else f"{name} {round_}",
                company=company_name,
                email=email,
                owner=owner,
                actor=bank.admin,
            )
            if i % 3 == round_ % 3:
                core.records.add_opportunity(
                    lead=lead.id,
                    name=f"{name} - Home Loan",
                    type="Home Loan" if i % 2 else "Sonic Savings_Plan",
                    owner=owner,
                    actor=bank.admin,
                )
            if owner is bank.daniel:
                daniels.append(lead.id)
    # Shares reach leads of other groups: kenji (Pre-Sales, own level) gets some of daniel's.
    for lead_id in daniels[::3]:
        result = core.sharing.share("lead", lead_id, "kenji", requester=bank.admin, duration="3d")
        assert result.status == "completed", result.reason
    return bank


def all_pages(core: Core, user: str, entity: EntityType, term: str | None, sort: str) -> list[int]:
    out: list[int] = []
    after = None
    for _ in range(100):
        page: Page = core.access.visible(user, entity, after=after, limit=4, search=term, sort=sort)
        out += [row.id for row in page.rows]
        after = page.next_cursor
        if after is None:
            return out
    raise AssertionError("paging never ended")


def scanned(monkeypatch: pytest.MonkeyPatch, fn, *args: Any) -> Any:
    """``fn(*args)`` with the text index switched off (the plain scan)."""
    with monkeypatch.context() as m:
        m.setattr(listing, "_text_index", lambda table, term: None)
        return fn(*args)


def expected_for_all(core: Core, entity: EntityType, term: str, sort: str) -> list[int]:
    """What substring search means, computed in Python for a user who sees everything."""
    column = sort.lstrip("-")
    key_sql = {"id": "r.id", "owner": "o.username"}.get(column, f"r.{column}")
    model_rows = core.db.execute_sql(
        f"SELECT r.id, {', '.join('r.' + f for f in SEARCHED[entity.table])}, {key_sql} "
        f"FROM {entity.table} r JOIN users o ON o.id = r.owner_id"
    ).fetchall()
    needle = term.strip().lower()
    hits = []
    for row in model_rows:
        ident, *fields, key = row
        if any(needle in casefold_like_the_database(f or "") for f in fields):
            folded = key.translate(_ASCII_LOWER) if isinstance(key, str) else key  # as the sorts fold
            hits.append(((folded, ident), ident))
    ordered = sorted(hits, reverse=sort.startswith("-"))
    return [ident for _, ident in ordered]


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def casefold_like_the_database(text: str) -> str:
    """``LOWER()`` as both stores do it (PostgreSQL under a UTF-8 locale; SQLite through
    sharetui's lower()): each character to its lowercase, İ to i."""
    return "".join("i" if ch == "\u0130" else ch.lower() for ch in text)


def test_the_migration_makes_the_index(core: Core) -> None:
    if is_sqlite():
        for table in SEARCHED:
            assert sqlite_has_index(core.db, table)
            triggers = {
                r[0]
                for r in core.db.execute_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
                )
            }
            assert triggers == {
                f"{index_table(table)}_{what}" for what in ("insert", "update_old", "update_new", "delete")
            }
    else:
        names = {
            r[0]
            for r in Statement(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexdef LIKE ?"
            ).all(["%gin_trgm_ops%"])
        }
        assert names == {f"{t}_{c}_trgm" for t, cols in SEARCHED.items() for c in cols}


@pytest.mark.parametrize("sort", SORTS)
def test_indexed_search_gives_what_a_scan_gives(company, monkeypatch: pytest.MonkeyPatch, sort: str) -> None:
    core = company.core
    for user in ("admin", "priya", "kenji", "daniel", "leila"):
        for entity in EntityType:
            for term in TERMS:
                indexed = all_pages(core, user, entity, term, sort)
                scan = scanned(monkeypatch, all_pages, core, user, entity, term, sort)
                assert indexed == scan, (user, entity, term, sort)
                if user == "admin":
                    assert indexed == expected_for_all(core, entity, term, sort), (entity, term, sort)


@pytest.mark.parametrize("rare", [True, False])
def test_both_plans_for_name_sorts_and_sales_users_agree(
    company, monkeypatch: pytest.MonkeyPatch, rare: bool
) -> None:
    """A name sort (or a sales user's list) reads a rare term's matches from the index and
    scans for a common one; force each plan for every term: same pages."""
    core = company.core
    monkeypatch.setattr(listing, "_rare", lambda text_index, table, term: rare)
    for user in ("admin", "kenji", "daniel"):
        for sort in SORTS:
            for term in ("son", "barn", "öztürk", "50%", "nothing-like-this"):
                indexed = all_pages(core, user, EntityType.LEAD, term, sort)
                assert indexed == scanned(monkeypatch, all_pages, core, user, EntityType.LEAD, term, sort)


def test_rare_terms_are_told_from_common_ones(company) -> None:
    if not is_sqlite():
        pytest.skip("the text index is FTS5 on SQLite")
    index = index_table("leads")
    assert listing._rare(index, "leads", "szpyra") is True
    assert listing._rare(index, "leads", "nothing-like-this") is True
    core = company.core
    core.db.execute_sql(
        "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields, created_at, "
        "updated_at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1100) "
        "SELECT 'Common Name ' || i, '', '', '', 'new', 'web', ?, '{}', ?, ? FROM n",
        (company.priya.id, core.db_now(), core.db_now()),
    )  # past the threshold's floor of 1,000 matches
    assert listing._rare(index, "leads", "common name") is False


def test_the_triggers_keep_the_index_in_step(bank, monkeypatch: pytest.MonkeyPatch) -> None:
    core = bank.core
    lead = core.records.add_lead(
        name="Zebulon Quarry",
        company="Quartz Ltd",
        email="zq@quartz.test",
        owner=bank.priya,
        actor=bank.admin,
    )

    def found(term: str) -> list[int]:
        indexed = all_pages(core, "admin", EntityType.LEAD, term, "id")
        assert indexed == scanned(monkeypatch, all_pages, core, "admin", EntityType.LEAD, term, "id")
        return indexed

    assert found("zebulon") == [lead.id]
    assert found("quartz") == [lead.id]
    core.records.update_record(("lead", lead.id), actor=bank.admin, values={"name": "Xavier Quill"})
    assert found("zebulon") == []
    assert found("xavier q") == [lead.id]
    assert found("quartz") == [lead.id]  # the company did not change
    core.records.update_record(("lead", lead.id), actor=bank.admin, values={"email": "xq@quill.test"})
    assert found("quartz") == [lead.id]  # still in the company
    assert found("zq@") == []
    opp = core.records.add_opportunity(
        lead=lead.id, name="Quill Mortgage", type="Vortex Loan", owner=bank.priya, actor=bank.admin
    )
    assert [r.id for r in core.access.visible("admin", "opportunity", search="vortex").rows] == [opp.id]
    core.records.update_record(("opportunity", opp.id), actor=bank.admin, values={"type": "Home Loan"})
    assert core.access.visible("admin", "opportunity", search="vortex").rows == []
    # Rows deleted by SQL leave the index too (nothing in the product deletes a lead today).
    Statement("DELETE FROM opportunities WHERE id = ?").run([opp.id])
    assert core.access.visible("admin", "opportunity", search="quill mort").rows == []
    Statement("DELETE FROM leads WHERE id = ?").run([lead.id])
    assert found("xavier") == []
    if is_sqlite():
        for table in SEARCHED:
            index = index_table(table)
            # Raises if the index disagrees with its content table.
            core.db.execute_sql(f"INSERT INTO {index}({index}, rank) VALUES ('integrity-check', 1)")


def test_literal_wildcards(bank) -> None:
    """Regression: '%' and '_' in the typed text were LIKE wildcards, so '%' listed every lead."""
    core = bank.core
    core.records.add_lead(name="Half Price", company="50% Off", owner=bank.priya, actor=bank.admin)
    core.records.add_lead(name="Fifty Ways", company="500 Club", owner=bank.priya, actor=bank.admin)
    core.records.add_lead(name="Snake_case", owner=bank.priya, actor=bank.admin)
    core.records.add_lead(name="Snakes case", owner=bank.priya, actor=bank.admin)

    def names(term: str) -> list[str]:
        return [r.values["name"] for r in core.access.visible("admin", "lead", search=term).rows]

    assert names("%") == ["Half Price"]
    assert names("50%") == ["Half Price"]
    assert names("e_c") == ["Snake_case"]
    assert names("snake_case") == ["Snake_case"]


def test_a_database_migrated_from_before_the_index_finds_its_old_rows(db_url: str, clock) -> None:
    """Migration 0005 fills the index from the rows already there."""
    from sharetui.db.connection import connect
    from sharetui.runtime import open_core

    db = connect(db_url)
    migrations.migrate(db, clock.now().replace(tzinfo=None), target=4)
    now = clock.now().replace(tzinfo=None)
    mark = db.param
    db.execute_sql(
        "INSERT INTO users (username, name, email, role, active, created_at, updated_at) "
        f"VALUES ('admin', 'Admin', 'a@x.test', 'admin', {mark}, {mark}, {mark})",
        (True, now, now),
    )
    (admin_id,) = db.execute_sql("SELECT id FROM users WHERE username = 'admin'").fetchone()
    for name in ("Old Timer", "Older Still", "Ancient Mariner"):
        db.execute_sql(
            "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields, "
            f"created_at, updated_at) VALUES ({mark}, '', '', 'Legacy Ltd', 'new', 'web', {mark}, '{{}}', "
            f"{mark}, {mark})",
            (name, admin_id, now, now),
        )
    db.close()
    core = open_core(db_url, clock)
    try:
        found = [r.values["name"] for r in core.access.visible("admin", "lead", search="old").rows]
        assert found == ["Old Timer", "Older Still"]
        assert len(core.access.visible("admin", "lead", search="legacy").rows) == 3
    finally:
        core.close()


def test_generate_rebuilds_the_index_after_a_bulk_load(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    """generate sets the triggers aside for a bulk load and rebuilds the index once."""
    from sharetui.ops import generator

    # Take the bulk path with a small company.
    monkeypatch.setattr("sharetui.ops.generator.bulk.BULK_INDEX_ROWS", 10)
    report = generator.generate(core, leads=300, opportunities=60, users=12, grants=20, seed=5, actor=None)
    assert report.indexes_rebuilt > 0
    for term in ("son", "mar", ".test", "an"):
        for entity in EntityType:
            indexed = all_pages(core, "admin", entity, term, "id")
            assert indexed == scanned(monkeypatch, all_pages, core, "admin", entity, term, "id")
            assert indexed == expected_for_all(core, entity, term, "id")
    if is_sqlite():
        triggers = core.db.execute_sql("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()
        assert triggers[0] == 8  # back in place: later inserts reach the index
        lead = core.records.add_lead(name="Quixotic Newcomer", owner="admin", actor=None)
        assert [r.id for r in core.access.visible("admin", "lead", search="quixotic").rows] == [lead.id]


def test_postgresql_can_answer_a_search_from_the_trigram_indexes(company) -> None:
    if is_sqlite():
        pytest.skip("PostgreSQL only")
    core = company.core
    with core.db.atomic():
        core.db.execute_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in core.db.execute_sql(
                "EXPLAIN SELECT id FROM leads r WHERE LOWER(r.name) LIKE %s ESCAPE '\\' "
                "OR LOWER(r.company) LIKE %s ESCAPE '\\' OR LOWER(r.email) LIKE %s ESCAPE '\\'",
                ["%szpyra%"] * 3,
            )
        )
    assert "leads_name_trgm" in plan and "leads_email_trgm" in plan, plan


def test_postgresql_plans_each_search_for_its_own_term(company) -> None:
    """Regression: psycopg prepares a statement run five times and PostgreSQL may then
    reuse one generic plan for every term; for a sales user's list that plan read the
    whole trigram indexes for a term without trigrams ('an': seconds on a big company).
    A search is never prepared."""
    if is_sqlite():
        pytest.skip("PostgreSQL only")
    core = company.core
    for term in ["an"] * 8 + ["son"] * 8:
        for user in ("kenji", "admin"):
            core.access.visible(user, "lead", search=term)
    prepared = [row[0] for row in Statement("SELECT statement FROM pg_prepared_statements").all()]
    assert not [s for s in prepared if "LIKE" in s], prepared


# -- non-ASCII names: the same answers on both stores -------------------------------------------------
# (name, term, found): what PostgreSQL's LOWER(name) LIKE '%term%' answers under a UTF-8 locale.
FOLDING = [
    ("Élodie Ünal", "Élodie", True),
    ("Élodie Ünal", "élodie", True),
    ("Élodie Ünal", "ünal", True),
    ("Élodie Ünal", "ÜNAL", True),
    ("Élodie Ünal", "odie ün", True),
    ("Élodie Ünal", "elodie", False),  # accents count
    ("Élodie Ünal", "unal", False),
    ("İpek Işık", "ipek", True),  # İ is i
    ("İpek Işık", "işık", True),  # and I is i, not the dotless ı
    ("İpek Işık", "ışık", False),
    ("Straße Müller", "straße", True),
    ("Straße Müller", "STRASSE", False),  # no ß/ss folding
    ("ΣΟΦΊΑ ΠΑΠΑΔΟΠΟΎΛΟΥ", "σοφία", True),
    ("ΣΟΦΊΑ ΠΑΠΑΔΟΠΟΎΛΟΥ", "παπαδοπούλου", True),
    ("Дмитрий ВОЛКОВ", "волков", True),
    ("ᏣᎳᎩ Nation", "ꮳꮃꭹ", True),  # Cherokee: FTS5's own tables do not fold it
    ("ᏣᎳᎩ Nation", "ᏣᎳᎩ", True),
    ("Ლ Georgian", "ლ geo", True),  # Georgian Mtavruli
]


def test_non_ascii_names_are_found_whatever_their_case_as_on_postgresql(bank) -> None:
    core = bank.core
    names = sorted({name for name, _, _ in FOLDING})
    ids = {name: core.records.add_lead(name=name, owner=bank.priya, actor=bank.admin).id for name in names}
    wrong = []
    for name, term, found in FOLDING:
        for user in ("admin", "priya"):  # the whole table, and a sales user's own records
            got = ids[name] in [r.id for r in core.access.visible(user, "lead", search=term).rows]
            if got != found:
                wrong.append((user, name, term, got))
    assert wrong == []


def test_the_index_stays_right_when_another_sqlite_client_writes(bank, db_url: str) -> None:
    """The sqlite3 shell has no sharetui lower(): the triggers and the view use built-in
    SQL only, so its inserts, updates and deletes keep the index exact."""
    if not is_sqlite():
        pytest.skip("the FTS5 index is SQLite's")
    import sqlite3

    from sharetui.ops.backup import sqlite_path

    core = bank.core
    other = sqlite3.connect(sqlite_path(db_url), isolation_level=None)
    stamp = "2026-03-02 09:00:00"
    insert = (
        "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields, created_at, "
        "updated_at) VALUES (?, '', '', ?, 'new', 'web', ?, '{}', ?, ?)"
    )
    try:
        with pytest.raises(sqlite3.OperationalError):
            other.execute("SELECT sharetui_nothing('x')")  # a plain client, no functions of ours
        first = other.execute(insert, ("İLKER ᏣᎳᎩ", "Öz Ltd", bank.priya.id, stamp, stamp)).lastrowid
        second = other.execute(insert, ("Ünal Kaya", "", bank.priya.id, stamp, stamp)).lastrowid

        def found(term: str) -> list[int]:
            return [r.id for r in core.access.visible("admin", "lead", search=term).rows]

        assert found("ilker") == [first] and found("ꮳꮃꭹ") == [first] and found("öz l") == [first]
        other.execute("UPDATE leads SET name = 'Ünal Kaya-İnce' WHERE id = ?", (second,))
        assert found("ünal kaya-ince") == [second]
        other.execute("UPDATE leads SET company = 'Ğ Holdings' WHERE id = ?", (first,))
        assert found("öz l") == [] and found("ğ hold") == [first]
        other.execute("DELETE FROM leads WHERE id = ?", (first,))
        assert found("ilker") == []
    finally:
        other.close()
    for table in SEARCHED:
        index = index_table(table)
        core.db.execute_sql(f"INSERT INTO {index}({index}, rank) VALUES ('integrity-check', 1)")


def test_migration_0006_refolds_the_rows_indexed_before_it(db_url: str, clock) -> None:
    from sharetui.db.connection import connect
    from sharetui.runtime import open_core

    db = connect(db_url)
    migrations.migrate(db, clock.now().replace(tzinfo=None), target=5)
    now = clock.now().replace(tzinfo=None)
    mark = db.param
    db.execute_sql(
        "INSERT INTO users (username, name, email, role, active, created_at, updated_at) "
        f"VALUES ('admin', 'Admin', 'a@x.test', 'admin', {mark}, {mark}, {mark})",
        (True, now, now),
    )
    (admin_id,) = db.execute_sql("SELECT id FROM users WHERE username = 'admin'").fetchone()
    for name in ("İPEK ÜNAL", "Plain Name"):
        db.execute_sql(
            "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields, created_at, "
            f"updated_at) VALUES ({mark}, '', '', '', 'new', 'web', {mark}, '{{}}', {mark}, {mark})",
            (name, admin_id, now, now),
        )
    db.close()
    core = open_core(db_url, clock)
    try:
        assert [r.values["name"] for r in core.access.visible("admin", "lead", search="ipek ünal").rows] == [
            "İPEK ÜNAL"
        ]
        assert len(core.access.visible("admin", "lead", search="plain").rows) == 1
    finally:
        core.close()


def test_fold_is_postgresqls_lower_for_every_cased_letter(core) -> None:
    """sharetui's lower() on SQLite must answer as PostgreSQL's does (under the test
    server's UTF-8 locale): compared letter by letter, for every letter Python can case."""
    if is_sqlite():
        pytest.skip("compares with PostgreSQL's lower()")
    from sharetui.db.search import fold

    letters = [chr(i) for i in range(0x80, 0x30000) if chr(i).lower() != chr(i) or chr(i).upper() != chr(i)]
    letters = [ch for ch in letters if not "\ud800" <= ch <= "\udfff"]
    rows = core.db.execute_sql("SELECT c, lower(c) FROM unnest(%s::text[]) AS c", (letters,)).fetchall()
    differ = [(hex(ord(ch)), low, fold(ch)) for ch, low in rows if low != fold(ch)]
    assert differ == []
