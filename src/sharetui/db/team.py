"""Team mode's SQL (DESIGN §8): group roles, row security, the functions the product
writes through, and what the faces ask about identity and time.

Team mode is a PostgreSQL database that ``sharetui team init`` set up. The setup role
(the one that ran the migrations and owns the tables) runs it; it records ``mode =
team`` in ``team_config`` and then:

- creates the group roles ``<prefix>admin``, ``<prefix>manager``, ``<prefix>marketing``,
  ``<prefix>sales`` and ``<prefix>worker`` (prefix ``sharetui_`` unless told; tests
  give each run its own, since roles are shared by every database of a cluster);
- turns row security on, and forces it, on every table that holds record data or share
  metadata, with policies that call the SQL functions below: they mirror the built-in
  access rules of ``default_plugins.access`` (role, owner, sales-group level, active
  grants with ``expires_at > sharetui_now()``);
- grants each group what its role needs. Logins in the four user groups may not write
  grants, share requests, history or the outbox: the product writes those through the
  ``SECURITY DEFINER`` functions here, owned by the setup role with ``search_path``
  pinned, which check DESIGN §9 for the acting user themselves. The worker group passes
  every policy (a policy ``TO <prefix>worker``: no superuser needed to set it up).

Everything is ``CREATE OR REPLACE`` / ``DROP ... IF EXISTS`` first: running it again
(after a new migration added a table, say) brings the database up to date.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from peewee import Database

from sharetui.db.batching import execute_apart
from sharetui.domain.roles import DEFAULT_SHARE_CAP
from sharetui.errors import UsageError

DEFAULT_PREFIX = "sharetui_"
# The version of the functions and policies `team init` installs, recorded in team_config
# (`functions`): a database set up by an older sharetui runs `team init` again to get them.
# 2: sharetui_hold_recipient, the share cap in sharetui_put_grant.
FUNCTIONS_VERSION = 2
GROUPS = ("admin", "manager", "marketing", "sales", "worker")
ROLE_GROUP = {"admin": "admin", "sales_manager": "manager", "marketing": "marketing", "sales": "sales"}

# Tables row security covers (DESIGN §8).
RLS_TABLES = (
    "leads",
    "opportunities",
    "activities",
    "tasks",
    "grants",
    "share_requests",
    "history",
    "automation_runs",
    "automation_steps",
    "notifications",
    "outbox",
    "saved_views",
    "api_keys",
)

_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_LOGIN = re.compile(r"^[a-z_][a-z0-9_.-]{0,62}$")


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """``text`` as a SQL string literal (only for names checked against a pattern)."""
    return "'" + text.replace("'", "''") + "'"


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise UsageError(f"role prefix {prefix!r}: use a-z, 0-9 and '_', starting with a letter")
    return prefix


def check_login(login: str) -> str:
    text = login.strip()
    if not _LOGIN.match(text):
        raise UsageError(
            f"login {login!r}: use lowercase a-z, 0-9, '_', '.' or '-' (at most 63), starting with a letter"
        )
    return text


# -- reading the setup -----------------------------------------------------------------
def has_config_table(db: Database) -> bool:
    row = db.execute_sql("SELECT to_regclass('team_config') IS NOT NULL").fetchone()
    return bool(row and row[0])


def config(db: Database) -> dict[str, str]:
    """``team_config`` as a dict; empty where the table does not exist yet."""
    if not has_config_table(db):
        return {}
    return dict(db.execute_sql("SELECT key, value FROM team_config").fetchall())


def session_login(db: Database) -> str:
    return db.execute_sql("SELECT session_user::text").fetchone()[0]


def login_groups(db: Database, login: str, prefix: str) -> list[str]:
    """The sharetui groups (without prefix) ``login`` is a member of."""
    rows = db.execute_sql(
        "SELECT r.rolname FROM pg_roles r WHERE r.rolname = ANY(%s) AND pg_has_role(%s, r.oid, 'MEMBER')",
        ([prefix + g for g in GROUPS], login),
    ).fetchall()
    return sorted(r[0][len(prefix) :] for r in rows)


def is_setup_role(db: Database, cfg: dict[str, str]) -> bool:
    """Whether the session is the setup role (or a superuser): it owns the tables."""
    row = db.execute_sql(
        "SELECT rolsuper OR rolname = %s FROM pg_roles WHERE rolname = session_user",
        (cfg.get("owner", ""),),
    ).fetchone()
    return bool(row and row[0])


def row_security(db: Database) -> dict[str, tuple[bool, bool]]:
    """Per covered table: (row security enabled, forced)."""
    rows = db.execute_sql(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
        "WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s)",
        (list(RLS_TABLES),),
    ).fetchall()
    found = {name: (bool(on), bool(forced)) for name, on, forced in rows}
    return {t: found.get(t, (False, False)) for t in RLS_TABLES}


def set_session(db: Database, name: str, value: str) -> None:
    """A ``sharetui.*`` setting for this session (act-as, the test clock)."""
    db.execute_sql("SELECT set_config(%s, %s, false)", (f"sharetui.{name}", value))


# The server's clock and its statement time unrounded (ServerClock.anchored).
_ANCHOR = "SELECT sharetui_now(), statement_timestamp() AT TIME ZONE 'UTC'"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ServerClock:
    """Team mode's clock: the server's ``sharetui_now()`` (its ``statement_timestamp()``, or
    the session's ``sharetui.now`` in a test-clock database). Implements
    :class:`sharetui.clock.Clock`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._local = threading.local()  # a held reading is its thread's (TUI workers are threads)

    def now(self) -> datetime:
        held = getattr(self._local, "held", None)
        if held is not None:
            return held
        anchor = getattr(self._local, "anchor", None)
        if anchor is not None:
            read, at = anchor
            return read if at is None else read + timedelta(seconds=time.perf_counter() - at)
        # Reads no table: a batch's held rows stay held (db/batching.py).
        return _utc(execute_apart(self.db, "SELECT sharetui_now()").fetchone()[0])

    @contextmanager
    def anchored(self) -> Iterator[None]:
        """One reading of the server's clock for many units of work (the worker's batch of
        events), instead of one round trip each: inside, the time is the server's
        statement time then (to the microsecond: ``sharetui_now()`` drops the fraction,
        which would put the batch up to a second behind what the server stamps meanwhile)
        plus the time elapsed since, measured here with a monotonic clock. Where the
        server's clock is a test-clock session's frozen time (``sharetui_now()`` is not
        the statement's second), it is that time, unmoving. The server decides which, and
        what time it is: only how long ago it was read is measured here."""
        if getattr(self._local, "anchor", None) is not None:  # anchored by an enclosing unit
            yield
            return
        clock, real = (_utc(v) for v in execute_apart(self.db, _ANCHOR).fetchone())
        frozen = clock != real.replace(microsecond=0)
        self._local.anchor = (clock, None) if frozen else (real, time.perf_counter())
        try:
            yield
        finally:
            self._local.anchor = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """One reading of the server's clock for a unit of work (the worker's event and
        all it causes), instead of a round trip each time the product asks the time: a
        worker asked nine times an event. The database's functions still stamp what they
        write with their own statement's time."""
        if getattr(self._local, "held", None) is not None:  # held by an enclosing unit
            yield
            return
        self._local.held = self.now()
        try:
            yield
        finally:
            self._local.held = None

    def __repr__(self) -> str:
        return "ServerClock()"


def scram_verifier(db: Database, login: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password``, computed here by libpq (as psql's
    ``\\password`` does): the server receives the verifier, never the password, so it is
    in no statement text, log or ``pg_stat_activity``."""
    pgconn = db.connection().pgconn
    return pgconn.encrypt_password(password.encode("utf-8"), login.encode("utf-8"), b"scram-sha-256").decode()


# -- the setup -------------------------------------------------------------------------
@dataclass(frozen=True)
class Names:
    prefix: str
    owner: str
    schema: str

    def group(self, which: str) -> str:
        return self.prefix + which

    @property
    def users_groups(self) -> str:
        """The four user groups, quoted, for ``TO ...``."""
        return ", ".join(ident(self.group(g)) for g in ("admin", "manager", "marketing", "sales"))


_FN = "SET search_path = {schema}, pg_temp"


# The acting user (what sharetui_me() returns), inlined where policies call: a nested
# SECURITY DEFINER call costs a context switch per call. session_user is a ``name``,
# whose collation is "C": compared to users.login as is, the comparison takes that
# collation and users_login (the column's default collation) cannot serve it, so every
# policy's look-up of the caller read the whole users table (0.8 ms, dozens per query).
ME_SQL = """(SELECT COALESCE(
    (SELECT t.id FROM users t WHERE c.role = 'admin' AND t.active
       AND t.username = NULLIF(current_setting('sharetui.act_as', true), '')),
    c.id)
  FROM users c WHERE c.login = session_user::text COLLATE "default" AND c.active)"""


def _functions(n: Names) -> list[str]:
    """The SQL functions policies and the product call. ``{schema}`` etc. filled in."""
    # PL/pgSQL even for one-query functions: it keeps their plans for the session, where a
    # SQL function that cannot be inlined (SECURITY DEFINER, SET) is planned at every call,
    # and row-security policies call these once per scan of a table in every query.
    head_fast = f"LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {ident(n.schema)}, pg_temp"
    head_pl = f"LANGUAGE plpgsql SECURITY DEFINER SET search_path = {ident(n.schema)}, pg_temp"
    groups = (
        "ARRAY[" + ", ".join(literal(n.group(g)) for g in ("admin", "manager", "marketing", "sales")) + "]"
    )
    owner = literal(n.owner)
    worker = literal(n.group("worker"))
    me = ME_SQL
    return [
        # Time: the server's, or the session's sharetui.now in a test-clock database; in
        # whole seconds, as sharetui stores every time (domain.time.to_db). The statement's
        # start, not the transaction's (now()): a transaction opened before a share ends
        # must not keep reading or editing through it.
        f"""CREATE OR REPLACE FUNCTION sharetui_now() RETURNS timestamp {head_fast} AS $$
BEGIN
  RETURN (
  SELECT CASE
    WHEN COALESCE(current_setting('sharetui.now', true), '') <> ''
         AND EXISTS (SELECT 1 FROM team_config WHERE key = 'test_clock' AND value = 'on')
    THEN date_trunc('second', current_setting('sharetui.now', true)::timestamptz AT TIME ZONE 'UTC')
    ELSE date_trunc('second', statement_timestamp() AT TIME ZONE 'UTC') END
  );
END
$$""",
        # Who: the user linked to session_user; an admin may look through another's eyes.
        f"""CREATE OR REPLACE FUNCTION sharetui_caller() RETURNS integer {head_fast} AS $$
BEGIN
  RETURN (
  SELECT id FROM users WHERE login = session_user::text COLLATE "default" AND active
  );
END
$$""",
        f"""CREATE OR REPLACE FUNCTION sharetui_me() RETURNS integer {head_fast} AS $$
BEGIN
  RETURN (
  SELECT COALESCE(
    (SELECT t.id FROM users t WHERE c.role = 'admin' AND t.active
       AND t.username = NULLIF(current_setting('sharetui.act_as', true), '')),
    c.id)
  FROM users c WHERE c.login = session_user::text COLLATE "default" AND c.active
  );
END
$$""",
        f"""CREATE OR REPLACE FUNCTION sharetui_my_role() RETURNS text {head_fast} AS $$
BEGIN
  RETURN (
  SELECT role FROM users WHERE id = {me}
  );
END
$$""",
        f"""CREATE OR REPLACE FUNCTION sharetui_requester_name() RETURNS text {head_fast} AS $$
BEGIN
  RETURN (
  SELECT CASE WHEN c.id = m.id THEN m.username ELSE c.username || ' as ' || m.username END
  FROM users c, users m WHERE c.id = sharetui_caller() AND m.id = sharetui_me()
  );
END
$$""",
        # The role's own level: admin and sales managers edit all, marketing reads all.
        f"""CREATE OR REPLACE FUNCTION sharetui_role_level() RETURNS integer {head_fast} AS $$
BEGIN
  RETURN (
  SELECT CASE (SELECT role FROM users WHERE id = {me}) WHEN 'admin' THEN 2
    WHEN 'sales_manager' THEN 2 WHEN 'marketing' THEN 1 ELSE 0 END
  );
END
$$""",
        # Owners whose records a sales group lets me read (level >= 1) or edit (>= 2).
        f"""CREATE OR REPLACE FUNCTION sharetui_group_owners(p_level integer)
RETURNS integer[] {head_fast} AS $$
BEGIN
  RETURN (
  SELECT COALESCE(array_agg(DISTINCT gm2.user_id), '{{}}') FROM group_members gm1
    JOIN group_members gm2 ON gm2.group_id = gm1.group_id
   WHERE gm1.user_id = {me} AND gm1.level >= p_level
  );
END
$$""",
        # Records an active grant, unexpired by the server's clock, gives me.
        f"""CREATE OR REPLACE FUNCTION sharetui_granted(p_entity text, p_access integer)
RETURNS integer[] {head_fast} AS $$
BEGIN
  RETURN (
  SELECT COALESCE(array_agg(DISTINCT entity_id), '{{}}') FROM grants
   WHERE user_id = {me} AND entity_type = p_entity AND state = 'active'
     AND expires_at > sharetui_now() AND access >= p_access
  );
END
$$""",
        # My level on one record (0 none, 1 read, 2 edit), as default_plugins.access decides.
        f"""CREATE OR REPLACE FUNCTION sharetui_level(p_entity text, p_id integer) RETURNS integer
{head_pl} STABLE AS $$
DECLARE
  v_me integer := sharetui_me();
  v_owner integer;
  v_level integer;
BEGIN
  IF v_me IS NULL OR p_id IS NULL THEN RETURN 0; END IF;
  IF p_entity = 'lead' THEN
    SELECT owner_id INTO v_owner FROM leads WHERE id = p_id;
  ELSIF p_entity = 'opportunity' THEN
    SELECT owner_id INTO v_owner FROM opportunities WHERE id = p_id;
  ELSE
    RETURN 0;
  END IF;
  IF NOT FOUND THEN RETURN 0; END IF;
  IF v_owner = v_me THEN RETURN 2; END IF;
  v_level := sharetui_role_level();
  IF v_level < 2 AND v_owner = ANY (sharetui_group_owners(2)) THEN v_level := 2; END IF;
  IF v_level < 1 AND v_owner = ANY (sharetui_group_owners(1)) THEN v_level := 1; END IF;
  RETURN GREATEST(v_level, COALESCE((SELECT MAX(access) FROM grants WHERE user_id = v_me
    AND entity_type = p_entity AND entity_id = p_id AND state = 'active'
    AND expires_at > sharetui_now()), 0));
END
$$""",
        # May I share (or revoke shares on) a record: DESIGN §9.
        f"""CREATE OR REPLACE FUNCTION sharetui_may_share(p_entity text, p_id integer) RETURNS boolean
{head_pl} STABLE AS $$
DECLARE
  v_role text := sharetui_my_role();
  v_owner integer;
BEGIN
  IF v_role IS NULL THEN RETURN false; END IF;
  IF p_entity = 'lead' THEN
    SELECT owner_id INTO v_owner FROM leads WHERE id = p_id;
  ELSE
    SELECT owner_id INTO v_owner FROM opportunities WHERE id = p_id;
  END IF;
  IF NOT FOUND THEN RETURN false; END IF;
  IF v_role IN ('admin', 'sales_manager') THEN RETURN true; END IF;
  RETURN v_role = 'sales' AND v_owner = sharetui_me()
    AND COALESCE((SELECT value FROM settings WHERE key = 'owners_can_share'), 'true') <> 'false';
END
$$""",
        # Whether this session is a person's login: neither the setup role (or a superuser)
        # nor a worker. The guards below hold persons to what the product lets them do.
        f"""CREATE OR REPLACE FUNCTION sharetui_person() RETURNS boolean {head_fast} AS $$
BEGIN
  RETURN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = session_user AND (rolsuper OR rolname = {owner}))
    AND NOT pg_has_role(session_user, {worker}, 'MEMBER');
END
$$""",
        # An activity or task may hang on these parents: each one given is a record I may
        # edit, and an opportunity with its lead is that lead's (as the product requires).
        f"""CREATE OR REPLACE FUNCTION sharetui_child_ok(p_lead integer, p_opp integer) RETURNS boolean
{head_pl} STABLE AS $$
BEGIN
  IF p_lead IS NULL AND p_opp IS NULL THEN RETURN false; END IF;
  IF p_lead IS NOT NULL AND sharetui_level('lead', p_lead) < 2 THEN RETURN false; END IF;
  IF p_opp IS NOT NULL AND sharetui_level('opportunity', p_opp) < 2 THEN RETURN false; END IF;
  RETURN p_lead IS NULL OR p_opp IS NULL
    OR EXISTS (SELECT 1 FROM opportunities WHERE id = p_opp AND lead_id = p_lead);
END
$$""",
        # Leads and opportunities a person writes: only admins and sales managers change an
        # owner; an opportunity goes on a lead one may edit; fields are a JSON object.
        f"""CREATE OR REPLACE FUNCTION sharetui_guard_record() RETURNS trigger {head_pl} AS $$
BEGIN
  IF NOT sharetui_person() THEN RETURN NEW; END IF;
  IF TG_OP = 'UPDATE' AND NEW.owner_id IS DISTINCT FROM OLD.owner_id
     AND COALESCE(sharetui_my_role(), '') NOT IN ('admin', 'sales_manager') THEN
    RAISE EXCEPTION 'only an admin or a sales manager may change a record''s owner' USING ERRCODE = '42501';
  END IF;
  IF TG_TABLE_NAME = 'opportunities' THEN  -- (NEW.lead_id exists only there)
    IF (TG_OP = 'INSERT' OR NEW.lead_id IS DISTINCT FROM OLD.lead_id)
       AND sharetui_level('lead', NEW.lead_id) < 2 THEN
      RAISE EXCEPTION 'no lead % you may edit', NEW.lead_id USING ERRCODE = '42501';
    END IF;
  END IF;
  IF jsonb_typeof(NEW.fields::jsonb) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'fields are a JSON object' USING ERRCODE = '22023';
  END IF;
  RETURN NEW;
END
$$""",
        # Activities and tasks a person writes: a task's creator (whom its reminder acts for)
        # is the acting user, never chosen; an owner with read access alone (completing their
        # activity or task) changes only what completing changes.
        f"""CREATE OR REPLACE FUNCTION sharetui_guard_child() RETURNS trigger {head_pl} AS $$
DECLARE
  v_free text[] := CASE TG_TABLE_NAME WHEN 'tasks' THEN ARRAY['completed_at', 'updated_at']
    ELSE ARRAY['status', 'completed_at', 'fields', 'note', 'updated_at'] END;
BEGIN
  IF NOT sharetui_person() THEN RETURN NEW; END IF;
  IF TG_TABLE_NAME = 'tasks' THEN
    NEW.created_by_id := CASE TG_OP WHEN 'INSERT' THEN sharetui_me() ELSE OLD.created_by_id END;
  ELSIF jsonb_typeof(NEW.fields::jsonb) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'fields are a JSON object' USING ERRCODE = '22023';
  END IF;
  IF TG_OP = 'UPDATE' AND NOT sharetui_child_ok(OLD.lead_id, OLD.opportunity_id)
     AND (to_jsonb(NEW) - v_free) IS DISTINCT FROM (to_jsonb(OLD) - v_free) THEN
    RAISE EXCEPTION 'with read access, the owner only completes it' USING ERRCODE = '42501';
  END IF;
  IF TG_OP = 'UPDATE' AND (NEW.lead_id, NEW.opportunity_id) IS DISTINCT FROM (OLD.lead_id, OLD.opportunity_id)
     AND NOT sharetui_child_ok(NEW.lead_id, NEW.opportunity_id) THEN
    RAISE EXCEPTION 'no record you may edit to move it to' USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END
$$""",
        # -- the write path ------------------------------------------------------------
        f"""CREATE OR REPLACE FUNCTION sharetui_open_request(
  p_action text, p_entity_type text, p_entity_id integer, p_recipient_name text,
  p_context integer, p_all_contexts boolean, p_access integer, p_duration text,
  p_until_completed boolean, p_source text, p_batch_id text) RETURNS integer {head_pl} AS $$
DECLARE
  v_me integer := sharetui_me();
  v_recipient integer;
  v_id integer;
BEGIN
  IF v_me IS NULL THEN
    RAISE EXCEPTION 'login % is linked to no active sharetui user', session_user USING ERRCODE = '42501';
  END IF;
  IF p_action NOT IN ('share', 'revoke') OR p_entity_type NOT IN ('lead', 'opportunity') THEN
    RAISE EXCEPTION 'not a share or revoke request' USING ERRCODE = '22023';
  END IF;
  IF p_source NOT IN ('manual', 'api', 'plugin') THEN
    RAISE EXCEPTION 'requests from source % are the worker''s', p_source USING ERRCODE = '42501';
  END IF;
  SELECT id INTO v_recipient FROM users WHERE username = lower(btrim(p_recipient_name));
  IF v_recipient IS NULL AND btrim(p_recipient_name) ~ '^[0-9]{{1,9}}$' THEN
    SELECT id INTO v_recipient FROM users WHERE id = btrim(p_recipient_name)::integer;
  END IF;
  INSERT INTO share_requests (action, status, entity_type, entity_id, recipient_name, recipient_id,
    requester_id, context_activity_id, all_contexts, access, duration, until_completed, source,
    automation_run_id, batch_id, created_at)
  VALUES (p_action, 'processing', p_entity_type, p_entity_id, p_recipient_name, v_recipient, v_me,
    p_context, p_all_contexts, p_access, p_duration, p_until_completed, p_source, NULL, p_batch_id,
    sharetui_now())
  RETURNING id INTO v_id;
  RETURN v_id;
END
$$""",
        f"""CREATE OR REPLACE FUNCTION sharetui_finish_request(
  p_id integer, p_status text, p_outcome text, p_grant_id integer, p_reason text) RETURNS void {head_pl} AS $$
BEGIN
  IF p_status NOT IN ('completed', 'failed') THEN
    RAISE EXCEPTION 'a request ends completed or failed' USING ERRCODE = '22023';
  END IF;
  -- The grant a request names is the one it made or renewed, or (a revoke) one it ended:
  -- never someone else's.
  IF (p_status = 'completed' AND p_outcome IN ('granted', 'renewed') AND p_grant_id IS NULL)
     OR (p_grant_id IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM grants g JOIN share_requests r ON r.id = p_id
       WHERE g.id = p_grant_id AND ((r.action = 'share' AND g.request_id = r.id)
         OR (r.action = 'revoke' AND p_outcome = 'revoked' AND g.state = 'revoked'
             AND g.entity_type = r.entity_type AND g.entity_id = r.entity_id
             AND g.user_id = r.recipient_id)))) THEN
    RAISE EXCEPTION 'request % made no grant %', p_id, p_grant_id USING ERRCODE = '42501';
  END IF;
  UPDATE share_requests SET status = p_status, outcome = p_outcome, grant_id = p_grant_id,
    reason = p_reason, finished_at = sharetui_now()
   WHERE id = p_id AND requester_id = sharetui_me() AND status = 'processing';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'request % is not yours to finish', p_id USING ERRCODE = '42501';
  END IF;
END
$$""",
        # Would a new share of this record take the recipient past the share cap (distinct
        # records of a kind with live grants)? The caller may not read the recipient's
        # other grants: it learns only yes or no, and only about records it may share.
        f"""CREATE OR REPLACE FUNCTION sharetui_over_cap(p_entity text, p_id integer, p_user integer)
RETURNS boolean {head_fast} AS $$
DECLARE
  v_now timestamp := sharetui_now();
  v_cap integer;
BEGIN
  IF NOT sharetui_may_share(p_entity, p_id) THEN
    RETURN NULL;
  END IF;
  IF EXISTS (SELECT 1 FROM grants WHERE user_id = p_user AND entity_type = p_entity
             AND entity_id = p_id AND state = 'active' AND expires_at > v_now) THEN
    RETURN false;
  END IF;
  SELECT (value::text)::integer INTO v_cap FROM settings
   WHERE key = CASE p_entity WHEN 'lead' THEN 'share_cap_leads' ELSE 'share_cap_opportunities' END;
  RETURN (SELECT count(DISTINCT entity_id) FROM grants WHERE user_id = p_user
          AND entity_type = p_entity AND state = 'active' AND expires_at > v_now)
         >= COALESCE(v_cap, {DEFAULT_SHARE_CAP});
END
$$""",
        # The recipient's share lock (db/locks.py): their users row, locked FOR NO KEY UPDATE
        # (which the foreign keys' checks do not wait for). A person's login may not lock
        # users rows itself, nor take this lock unless it may share (marketing may not): an
        # advisory lock, which any login may take, let anyone hold up shares to a person.
        # p_wait false: only if free at once (a batch holding other recipients' locks).
        f"""CREATE OR REPLACE FUNCTION sharetui_hold_recipient(p_user integer, p_wait boolean, p_timeout text)
RETURNS boolean {head_pl} AS $$
BEGIN
  IF p_wait THEN
    PERFORM set_config('lock_timeout', p_timeout, true);
    PERFORM 1 FROM users WHERE id = p_user FOR NO KEY UPDATE;
    RETURN true;
  END IF;
  PERFORM 1 FROM users WHERE id = p_user FOR NO KEY UPDATE SKIP LOCKED;
  RETURN FOUND;
END
$$""",
        # Grant or renew what a share request of mine asks, if DESIGN §9 and §3 let me.
        f"""CREATE OR REPLACE FUNCTION sharetui_put_grant(p_request integer, p_expires timestamp)
RETURNS integer {head_pl} AS $$
DECLARE
  r share_requests;
  v_user users;
  v_owner integer;
  a activities;
  v_now timestamp := sharetui_now();
  v_id integer;
BEGIN
  SELECT * INTO r FROM share_requests WHERE id = p_request AND requester_id = sharetui_me()
    AND status = 'processing' AND action = 'share';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'share request % is not yours to decide', p_request USING ERRCODE = '42501';
  END IF;
  IF NOT sharetui_may_share(r.entity_type, r.entity_id) THEN
    RAISE EXCEPTION 'you may not share % %', r.entity_type, r.entity_id USING ERRCODE = '42501';
  END IF;
  IF r.entity_type = 'lead' THEN
    SELECT owner_id INTO v_owner FROM leads WHERE id = r.entity_id;
  ELSE
    SELECT owner_id INTO v_owner FROM opportunities WHERE id = r.entity_id;
  END IF;
  SELECT * INTO v_user FROM users WHERE id = r.recipient_id;
  IF NOT FOUND OR NOT v_user.active OR v_user.role <> 'sales' OR v_user.id = v_owner THEN
    RAISE EXCEPTION 'only an active sales user who does not own the record receives a share'
      USING ERRCODE = '42501';
  END IF;
  IF r.context_activity_id IS NOT NULL THEN
    SELECT * INTO a FROM activities WHERE id = r.context_activity_id;
    IF NOT FOUND OR r.entity_type <> 'lead' OR a.deleted_at IS NOT NULL
       OR a.lead_id IS DISTINCT FROM r.entity_id OR a.owner_id IS DISTINCT FROM v_user.id THEN
      RAISE EXCEPTION 'activity % is no context for this share', r.context_activity_id
        USING ERRCODE = '42501';
    END IF;
  END IF;
  IF r.access NOT IN (1, 2) OR p_expires < v_now + interval '59 seconds'
     OR p_expires > v_now + interval '5 years 1 day' THEN
    RAISE EXCEPTION 'a share lasts from 1 minute to 5 years' USING ERRCODE = '22023';
  END IF;
  -- Shares to one recipient one at a time (as the application does), then the cap. The
  -- count must see what was committed while this waited for the lock: a REPEATABLE READ
  -- transaction reads its older snapshot and would pass the cap (SERIALIZABLE is safe:
  -- its conflict checks abort one of two such shares; READ UNCOMMITTED is READ COMMITTED).
  IF current_setting('transaction_isolation') = 'repeatable read' THEN
    RAISE EXCEPTION 'a share is decided at READ COMMITTED or SERIALIZABLE isolation, not REPEATABLE READ'
      USING ERRCODE = '0A000';
  END IF;
  PERFORM 1 FROM users WHERE id = v_user.id FOR NO KEY UPDATE;
  IF sharetui_over_cap(r.entity_type, r.entity_id, v_user.id) THEN
    RAISE EXCEPTION 'the recipient holds as many shares as the share cap allows' USING ERRCODE = '42501';
  END IF;
  UPDATE grants SET access = r.access, expires_at = p_expires, until_completed = r.until_completed,
      request_id = r.id, warned_at = NULL, updated_at = v_now
   WHERE entity_type = r.entity_type AND entity_id = r.entity_id AND user_id = v_user.id
     AND context_key = COALESCE(r.context_activity_id, 0) AND state = 'active' AND expires_at > v_now
  RETURNING id INTO v_id;
  IF v_id IS NULL THEN
    INSERT INTO grants (entity_type, entity_id, user_id, context_activity_id, context_key, access,
      starts_at, expires_at, state, source, request_id, until_completed, created_at, updated_at)
    VALUES (r.entity_type, r.entity_id, v_user.id, r.context_activity_id,
      COALESCE(r.context_activity_id, 0), r.access, v_now, p_expires, 'active', r.source, r.id,
      r.until_completed, v_now, v_now)
    RETURNING id INTO v_id;
  END IF;
  RETURN v_id;
END
$$""",
        # End a grant: expired once the server clock passed it; revoked by whoever may
        # share the record, an admin (deactivation, role change), or its context's end.
        f"""CREATE OR REPLACE FUNCTION sharetui_end_grant(p_grant integer, p_state text, p_reason text)
RETURNS boolean {head_pl} AS $$
DECLARE
  g grants;
  v_now timestamp := sharetui_now();
BEGIN
  IF sharetui_me() IS NULL THEN
    RAISE EXCEPTION 'login % is linked to no active sharetui user', session_user USING ERRCODE = '42501';
  END IF;
  SELECT * INTO g FROM grants WHERE id = p_grant AND state = 'active' FOR UPDATE;
  -- A grant I may not see answers as a missing one does: nothing to end.
  IF NOT FOUND OR NOT (g.user_id = sharetui_me() OR sharetui_role_level() >= 1
                       OR sharetui_level(g.entity_type, g.entity_id) >= 1) THEN
    RETURN false;
  END IF;
  IF p_state = 'expired' THEN
    IF g.expires_at > v_now THEN
      RAISE EXCEPTION 'grant % has not expired', p_grant USING ERRCODE = '42501';
    END IF;
    UPDATE grants SET state = 'expired', ended_at = g.expires_at, ended_reason = 'expired',
      updated_at = v_now WHERE id = p_grant;
  ELSIF p_state = 'revoked' THEN
    IF NOT (sharetui_may_share(g.entity_type, g.entity_id) OR sharetui_my_role() = 'admin'
        OR EXISTS (SELECT 1 FROM activities a WHERE a.id = g.context_activity_id
                    AND (a.deleted_at IS NOT NULL OR (g.until_completed AND a.status = 'completed')))) THEN
      RAISE EXCEPTION 'you may not revoke grant %', p_grant USING ERRCODE = '42501';
    END IF;
    UPDATE grants SET state = 'revoked', ended_at = v_now, ended_reason = p_reason, updated_at = v_now
     WHERE id = p_grant;
  ELSE
    RAISE EXCEPTION 'a grant ends expired or revoked' USING ERRCODE = '22023';
  END IF;
  RETURN true;
END
$$""",
        # A history row about a request of mine, or the end of a grant that just ended. The
        # server takes what it records from the request and the grant, never from the caller:
        # the record, the person, the access, the source, the requester and the time. The
        # grant is the one the request made or renewed, or one it (or a checked path) ended.
        f"""CREATE OR REPLACE FUNCTION sharetui_add_history(
  p_event text, p_status text, p_reason text, p_request_id integer, p_grant_id integer,
  p_entity_type text, p_entity_id integer, p_user_id integer, p_user_name text, p_access integer,
  p_context integer, p_duration text, p_source text, p_has_requester boolean) RETURNS void {head_pl} AS $$
DECLARE
  v_me integer := sharetui_me();
  g grants;
  r share_requests;
  v_at timestamp := sharetui_now();
  v_user integer;
BEGIN
  IF v_me IS NULL THEN
    RAISE EXCEPTION 'login % is linked to no active sharetui user', session_user USING ERRCODE = '42501';
  END IF;
  IF p_event NOT IN ('share', 'renew', 'revoke', 'granted', 'renewed', 'revoked', 'expired')
     OR p_status NOT IN ('completed', 'failed') THEN
    RAISE EXCEPTION 'not a history event' USING ERRCODE = '22023';
  END IF;
  IF p_grant_id IS NOT NULL THEN
    SELECT * INTO g FROM grants WHERE id = p_grant_id;
  END IF;
  IF p_request_id IS NOT NULL THEN
    SELECT * INTO r FROM share_requests WHERE id = p_request_id AND requester_id = v_me;
    IF NOT FOUND OR NOT ((r.action = 'share' AND p_event IN ('share', 'renew', 'granted', 'renewed'))
                         OR (r.action = 'revoke' AND p_event IN ('revoke', 'revoked'))) THEN
      RAISE EXCEPTION 'request % is not yours', p_request_id USING ERRCODE = '42501';
    END IF;
    IF p_grant_id IS NOT NULL AND (g.id IS NULL OR NOT (
         (r.action = 'share' AND g.request_id = r.id)
         OR (r.action = 'revoke' AND g.state = 'revoked' AND g.entity_type = r.entity_type
             AND g.entity_id = r.entity_id AND g.user_id = r.recipient_id))) THEN
      RAISE EXCEPTION 'request % made or ended no grant %', p_request_id, p_grant_id USING ERRCODE = '42501';
    END IF;
    IF EXISTS (SELECT 1 FROM history WHERE request_id = r.id AND event = p_event
                AND grant_id IS NOT DISTINCT FROM g.id) THEN
      RAISE EXCEPTION 'history is written with the change it records' USING ERRCODE = '42501';
    END IF;
    v_user := COALESCE(g.user_id, r.recipient_id);
    INSERT INTO history (at, event, status, reason, request_id, grant_id, entity_type, entity_id, user_id,
      user_name, access, context_activity_id, duration, starts_at, expires_at, source, requester_id,
      requester_name, automation_run_id)
    VALUES (v_at, p_event, p_status, p_reason, r.id, g.id, r.entity_type, r.entity_id, v_user,
      COALESCE((SELECT username FROM users WHERE id = v_user), r.recipient_name),
      COALESCE(g.access, r.access),
      CASE WHEN g.id IS NULL THEN r.context_activity_id ELSE g.context_activity_id END,
      r.duration, g.starts_at, g.expires_at, r.source, v_me, sharetui_requester_name(), NULL);
    RETURN;
  END IF;
  IF g.id IS NULL OR p_event NOT IN ('expired', 'revoked') OR g.state <> p_event
     OR EXISTS (SELECT 1 FROM history WHERE grant_id = g.id AND event = p_event) THEN
    RAISE EXCEPTION 'history is written with the change it records' USING ERRCODE = '42501';
  END IF;
  INSERT INTO history (at, event, status, reason, request_id, grant_id, entity_type, entity_id, user_id,
    user_name, access, context_activity_id, duration, starts_at, expires_at, source, requester_id,
    requester_name, automation_run_id)
  VALUES (CASE WHEN p_event = 'expired' THEN g.expires_at ELSE v_at END, p_event, 'completed', g.ended_reason,
    NULL, g.id, g.entity_type, g.entity_id, g.user_id, (SELECT username FROM users WHERE id = g.user_id),
    g.access, g.context_activity_id, NULL, g.starts_at, g.expires_at,
    CASE WHEN p_event = 'expired' THEN g.source ELSE 'manual' END,
    CASE WHEN p_event = 'revoked' THEN v_me END,
    CASE WHEN p_event = 'revoked' THEN sharetui_requester_name() ELSE '' END, NULL);
END
$$""",
        # An outbox event about a record I may read (or, without a record, by an admin or a
        # sales manager), of a topic a person's change makes; its actor is always me (an
        # impersonating admin is named too), and the activity or task it names belongs to
        # its record: the worker's automations act for that person, never for themselves.
        f"""CREATE OR REPLACE FUNCTION sharetui_emit(
  p_topic text, p_entity_type text, p_entity_id integer, p_payload text) RETURNS integer {head_pl} AS $$
DECLARE
  v_me integer := sharetui_me();
  v_caller integer := sharetui_caller();
  v jsonb;
  v_ref text;
  v_id integer;
BEGIN
  IF v_me IS NULL THEN
    RAISE EXCEPTION 'login % is linked to no active sharetui user', session_user USING ERRCODE = '42501';
  END IF;
  v := p_payload::jsonb;  -- not JSON: 22P02
  IF v IS NULL OR jsonb_typeof(v) <> 'object' THEN
    RAISE EXCEPTION 'an event''s payload is a JSON object' USING ERRCODE = '22023';
  END IF;
  IF p_entity_type IS NULL THEN
    IF p_topic !~ '^(user|group|setting|activity_type|automation)\\.[a-z_]+$' THEN
      RAISE EXCEPTION 'a person''s change makes no % event', p_topic USING ERRCODE = '42501';
    END IF;
    IF sharetui_role_level() < 2 THEN
      RAISE EXCEPTION 'only admins and sales managers emit events about no record' USING ERRCODE = '42501';
    END IF;
  ELSE
    IF p_topic !~ '^((lead|opportunity)\\.(created|updated)|activity\\.(created|updated|deleted)'
       '|task\\.(created|completed)|share\\.[a-z_]+)$'
       OR (p_topic ~ '^(lead|opportunity)\\.' AND split_part(p_topic, '.', 1) <> p_entity_type) THEN
      RAISE EXCEPTION 'a person''s change makes no % event', p_topic USING ERRCODE = '42501';
    END IF;
    IF sharetui_level(p_entity_type, p_entity_id) < 1 AND NOT (
        p_topic = 'share.request_failed' AND jsonb_typeof(v -> 'request_id') = 'number'
        AND EXISTS (SELECT 1 FROM share_requests WHERE id = (v ->> 'request_id')::numeric
          AND requester_id = v_me AND entity_type = p_entity_type AND entity_id = p_entity_id))
      -- Completing my activity may end my own share of its record, and my reading with it:
      -- the end of that share and the activity's update are still mine to announce.
      AND NOT (p_topic IN ('share.revoked', 'share.expired') AND jsonb_typeof(v -> 'grant_id') = 'number'
        AND EXISTS (SELECT 1 FROM grants WHERE id = (v ->> 'grant_id')::numeric AND user_id = v_me
          AND state <> 'active' AND entity_type = p_entity_type AND entity_id = p_entity_id))
      AND NOT (p_topic = 'activity.updated' AND jsonb_typeof(v -> 'activity_id') = 'number'
        AND EXISTS (SELECT 1 FROM activities a WHERE a.id = (v ->> 'activity_id')::numeric
          AND a.owner_id = v_me
          AND CASE p_entity_type WHEN 'lead' THEN a.lead_id ELSE a.opportunity_id END = p_entity_id)) THEN
      RAISE EXCEPTION 'no % % you may read', p_entity_type, p_entity_id USING ERRCODE = '42501';
    END IF;
    FOREACH v_ref IN ARRAY ARRAY['activity_id', 'task_id'] LOOP
      CONTINUE WHEN NOT v ? v_ref OR jsonb_typeof(v -> v_ref) = 'null';
      IF jsonb_typeof(v -> v_ref) <> 'number' OR NOT (
          (v_ref = 'activity_id' AND EXISTS (SELECT 1 FROM activities a WHERE a.id = (v ->> v_ref)::numeric
            AND CASE p_entity_type WHEN 'lead' THEN a.lead_id ELSE a.opportunity_id END = p_entity_id))
          OR (v_ref = 'task_id' AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = (v ->> v_ref)::numeric
            AND CASE p_entity_type WHEN 'lead' THEN t.lead_id ELSE t.opportunity_id END = p_entity_id))) THEN
        RAISE EXCEPTION '% % is not of % %', v_ref, v ->> v_ref, p_entity_type, p_entity_id
          USING ERRCODE = '42501';
      END IF;
    END LOOP;
  END IF;
  v := jsonb_set(v, '{{actor_id}}', to_jsonb(v_me));
  v := v - 'impersonated_by';
  IF v_caller IS DISTINCT FROM v_me THEN
    v := v || jsonb_build_object('impersonated_by', (SELECT username FROM users WHERE id = v_caller));
  END IF;
  INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts)
  VALUES (p_topic, p_entity_type, p_entity_id, v::text, sharetui_now(), 0) RETURNING id INTO v_id;
  RETURN v_id;
END
$$""",
        # Logins: create or link one for a user (admins, or the setup role itself). A role
        # this function creates may get a password; an existing role never does (it is
        # someone's: its owner or a superuser sets its password), and it is linked only if
        # it holds nothing: no privilege of its own, no membership in any role (the setup
        # role, the worker group, another prefix's groups, a superuser...), no database,
        # and no other user is linked to it. Linked roles are recorded in team_config
        # (``login:NAME``): sharetui_sync_login touches only those.
        f"""CREATE OR REPLACE FUNCTION sharetui_link_login(
  p_user integer, p_login text, p_verifier text, p_create boolean) RETURNS void {head_pl} AS $$
DECLARE
  r pg_roles;
  v_setup boolean := session_user::text = {owner}
    OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = session_user AND rolsuper);
BEGIN
  IF NOT (v_setup OR (sharetui_my_role() = 'admin' AND sharetui_me() = sharetui_caller())) THEN
    RAISE EXCEPTION 'only an admin login may link logins' USING ERRCODE = '42501';
  END IF;
  IF p_login !~ '^[a-z_][a-z0-9_.-]{{0,62}}$' THEN
    RAISE EXCEPTION 'login name % is not allowed', p_login USING ERRCODE = '22023';
  END IF;
  SELECT * INTO r FROM pg_roles WHERE rolname = p_login;
  IF p_create THEN
    IF FOUND THEN
      RAISE EXCEPTION 'login % exists already: link it with --login %', p_login, p_login
        USING ERRCODE = '42710';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS', p_login);
    IF p_verifier IS NOT NULL THEN
      EXECUTE format('ALTER ROLE %I PASSWORD %L', p_login, p_verifier);
    END IF;
  ELSIF NOT FOUND THEN
    RAISE EXCEPTION 'no login % on this server', p_login USING ERRCODE = '42704';
  ELSE
    IF p_verifier IS NOT NULL THEN
      RAISE EXCEPTION 'login % exists: sharetui sets no password on it (its owner or a superuser does)',
        p_login USING ERRCODE = '42501';
    END IF;
    IF r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolreplication OR r.rolname = {owner}
       OR EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                   WHERE m.member = r.oid AND g.rolname <> ALL ({groups}))
       OR EXISTS (SELECT 1 FROM pg_roles p WHERE (p.rolsuper OR p.rolcreaterole OR p.rolbypassrls
                   OR p.rolreplication OR p.rolname IN ({owner}, {worker}))
                   AND pg_has_role(r.oid, p.oid, 'MEMBER'))
       OR EXISTS (SELECT 1 FROM pg_database WHERE datdba = r.oid) THEN
      RAISE EXCEPTION 'login % holds privileges or memberships of its own: sharetui links only a plain login',
        p_login USING ERRCODE = '42501';
    END IF;
    IF EXISTS (SELECT 1 FROM users WHERE login = p_login AND id <> p_user) THEN
      RAISE EXCEPTION 'login % is linked to another user already', p_login USING ERRCODE = '42710';
    END IF;
  END IF;
  INSERT INTO team_config (key, value) VALUES ('login:' || p_login, 'linked')
    ON CONFLICT (key) DO NOTHING;
  UPDATE users SET login = p_login WHERE id = p_user;
END
$$""",
        # A linked login's group follows the user's role, its LOGIN the user's active flag.
        f"""CREATE OR REPLACE FUNCTION sharetui_sync_login() RETURNS trigger {head_pl} AS $$
DECLARE
  g text;
  v_group text;
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.login IS NOT NULL AND OLD.login IS DISTINCT FROM NEW.login
     AND EXISTS (SELECT 1 FROM team_config WHERE key = 'login:' || OLD.login)
     AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = OLD.login) THEN
    DELETE FROM team_config WHERE key = 'login:' || OLD.login;
    FOREACH g IN ARRAY {groups} LOOP
      IF EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles gr ON gr.oid = m.roleid
                  JOIN pg_roles u ON u.oid = m.member WHERE gr.rolname = g AND u.rolname = OLD.login) THEN
        EXECUTE format('REVOKE %I FROM %I', g, OLD.login);
      END IF;
    END LOOP;
  END IF;
  IF NEW.login IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = NEW.login)
     OR NOT EXISTS (SELECT 1 FROM team_config WHERE key = 'login:' || NEW.login) THEN
    RETURN NEW;  -- only roles sharetui_link_login linked
  END IF;
  v_group := CASE NEW.role WHEN 'admin' THEN {literal(n.group("admin"))}
    WHEN 'sales_manager' THEN {literal(n.group("manager"))}
    WHEN 'marketing' THEN {literal(n.group("marketing"))} ELSE {literal(n.group("sales"))} END;
  FOREACH g IN ARRAY {groups} LOOP
    IF g <> v_group AND EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles gr ON gr.oid = m.roleid
                  JOIN pg_roles u ON u.oid = m.member WHERE gr.rolname = g AND u.rolname = NEW.login) THEN
      EXECUTE format('REVOKE %I FROM %I', g, NEW.login);
    END IF;
  END LOOP;
  EXECUTE format('GRANT %I TO %I', v_group, NEW.login);
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = NEW.login AND (rolsuper OR rolname = {owner})) THEN
    EXECUTE format('ALTER ROLE %I %s', NEW.login, CASE WHEN NEW.active THEN 'LOGIN' ELSE 'NOLOGIN' END);
  END IF;
  RETURN NEW;
END
$$""",
    ]


HOLD_RECIPIENT = "sharetui_hold_recipient(integer, boolean, text)"
WRITE_FUNCTIONS = (
    "sharetui_open_request(text, text, integer, text, integer, boolean, integer, text, boolean, text, text)",
    "sharetui_finish_request(integer, text, text, integer, text)",
    "sharetui_put_grant(integer, timestamp)",
    "sharetui_end_grant(integer, text, text)",
    "sharetui_add_history(text, text, text, integer, integer, text, integer, integer, text, integer, "
    "integer, text, text, boolean)",
    "sharetui_emit(text, text, integer, text)",
    "sharetui_link_login(integer, text, text, boolean)",
)


def _policies(n: Names) -> list[str]:
    """Row security: one policy per (table, command) for the user groups, and the
    setup role's and the worker's pass-everything policies."""
    to = n.users_groups
    writers = ", ".join(ident(n.group(g)) for g in ("admin", "manager", "sales"))
    me = "(SELECT sharetui_me())"
    lvl = "(SELECT sharetui_role_level())"

    def record(entity: str, access: int) -> str:
        # The role's test as one boolean the subquery answers: the planner cannot see its
        # value and takes it as true half the time. Written "level >= n", it took a third,
        # read a sales user's pages as mostly filtered out, and fetched every record of each
        # owner (then sorted them) instead of stopping at a page of the (owner, id) index.
        return (
            f"((SELECT sharetui_role_level() >= {access}) OR owner_id = {me} "
            f"OR owner_id = ANY ((SELECT sharetui_group_owners({access}))::integer[]) "
            f"OR id = ANY ((SELECT sharetui_granted('{entity}', {access}))::integer[]))"
        )

    readable = (
        "((entity_type = 'lead' AND entity_id IN (SELECT id FROM leads)) "
        "OR (entity_type = 'opportunity' AND entity_id IN (SELECT id FROM opportunities)))"
    )
    child_read = (
        "((lead_id IS NOT NULL AND lead_id IN (SELECT id FROM leads)) "
        "OR (opportunity_id IS NOT NULL AND opportunity_id IN (SELECT id FROM opportunities)))"
    )
    # Every parent given is one I may edit (and consistent): never a record I cannot read.
    child_edit = "sharetui_child_ok(lead_id, opportunity_id)"
    # The owner of an activity (a sales owner of a task) with read access completes it;
    # sharetui_guard_child lets such an update change only what completing changes.
    child_own = {
        "activities": f"(owner_id = {me} AND {child_read})",
        "tasks": f"(owner_id = {me} AND (SELECT sharetui_my_role()) = 'sales' AND {child_read})",
    }
    lead_insert = f"({lvl} >= 2 OR ((SELECT sharetui_my_role()) = 'sales' AND owner_id = {me}))"
    # An opportunity is made on a lead one may edit, as the product requires.
    opp_insert = f"({lead_insert} AND sharetui_level('lead', lead_id) >= 2)"
    out: list[str] = []

    def policy(table: str, name: str, command: str, roles: str, using: str | None, check: str | None) -> None:
        out.append(f"DROP POLICY IF EXISTS {name} ON {table}")
        text = f"CREATE POLICY {name} ON {table} FOR {command} TO {roles}"
        if using is not None:
            text += f" USING ({using})"
        if check is not None:
            text += f" WITH CHECK ({check})"
        out.append(text)

    for table in RLS_TABLES:
        out.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        out.append(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        policy(table, "sharetui_setup", "ALL", ident(n.owner), "true", "true")
        policy(table, "sharetui_worker", "ALL", ident(n.group("worker")), "true", "true")
    for table, entity in (("leads", "lead"), ("opportunities", "opportunity")):
        policy(table, "sharetui_read", "SELECT", to, record(entity, 1), None)
        insert = lead_insert if table == "leads" else opp_insert
        policy(table, "sharetui_insert", "INSERT", writers, None, insert)
        policy(table, "sharetui_update", "UPDATE", writers, record(entity, 2), record(entity, 2))
    for table in ("activities", "tasks"):
        policy(table, "sharetui_read", "SELECT", to, child_read, None)
        policy(table, "sharetui_insert", "INSERT", writers, None, child_edit)
        either = f"({child_edit} OR {child_own[table]})"
        policy(table, "sharetui_update", "UPDATE", writers, either, either)
    policy("grants", "sharetui_read", "SELECT", to, f"{lvl} >= 1 OR user_id = {me} OR {readable}", None)
    policy(
        "share_requests",
        "sharetui_read",
        "SELECT",
        to,
        f"{lvl} >= 1 OR requester_id = {me} OR recipient_id = {me} OR {readable}",
        None,
    )
    policy("history", "sharetui_read", "SELECT", to, f"{lvl} >= 1 OR user_id = {me} OR {readable}", None)
    policy("outbox", "sharetui_read", "SELECT", to, f"{lvl} >= 2 OR {readable}", None)
    policy("automation_runs", "sharetui_read", "SELECT", to, f"{lvl} >= 2", None)
    policy(
        "automation_steps", "sharetui_read", "SELECT", to, "run_id IN (SELECT id FROM automation_runs)", None
    )
    own_note = f"(SELECT sharetui_my_role()) = 'admin' OR user_id = {me}"
    policy("notifications", "sharetui_read", "SELECT", to, own_note, None)
    policy("notifications", "sharetui_update", "UPDATE", to, f"user_id = {me}", f"user_id = {me}")
    # Saved views: one's own and the shared ones (no owner) are read; one's own are
    # written, and an admin writes any (shared views are theirs to keep).
    admin = "(SELECT sharetui_my_role()) = 'admin'"
    policy(
        "saved_views", "sharetui_read", "SELECT", to, f"owner_id IS NULL OR owner_id = {me} OR {admin}", None
    )
    mine = f"owner_id = {me} OR {admin}"
    policy("saved_views", "sharetui_insert", "INSERT", to, None, mine)
    policy("saved_views", "sharetui_update", "UPDATE", to, mine, mine)
    policy("saved_views", "sharetui_delete", "DELETE", to, mine, None)
    # API keys: one's own (admins all); only a key's hash is stored, and even that is
    # nobody else's to read. `sharetui serve` checks keys as the worker login.
    own_key = f"user_id = {me} OR {admin}"
    policy("api_keys", "sharetui_read", "SELECT", to, own_key, None)
    policy("api_keys", "sharetui_insert", "INSERT", to, None, own_key)
    policy("api_keys", "sharetui_update", "UPDATE", to, own_key, own_key)
    return out


def _grants(n: Names) -> list[str]:
    g = {k: ident(n.group(k)) for k in GROUPS}
    users4 = n.users_groups
    writers = f"{g['admin']}, {g['manager']}, {g['sales']}"
    schema = ident(n.schema)
    out = [
        f"GRANT USAGE ON SCHEMA {schema} TO {users4}, {g['worker']}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC, {users4}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {users4}",
        # Automations run in the worker in team mode: their definitions and schedules are
        # for admins and sales managers to read (READ_AUTOMATIONS), not sales or marketing.
        f"REVOKE SELECT ON automations, schedule_state FROM {g['sales']}, {g['marketing']}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {writers}",
        f"GRANT INSERT, UPDATE ON leads, opportunities, activities, tasks TO {writers}",
        f"GRANT UPDATE (read_at) ON notifications TO {users4}",
        # users.login only through sharetui_link_login, which checks what it links.
        f"GRANT INSERT (username, name, email, role, active, created_at, updated_at) ON users "
        f"TO {g['admin']}",
        f"GRANT UPDATE (name, email, role, active, updated_at) ON users TO {g['admin']}",
        f"GRANT INSERT, UPDATE, DELETE ON sales_groups, group_members TO {g['admin']}, {g['manager']}",
        f"GRANT INSERT, UPDATE ON activity_types TO {g['admin']}, {g['manager']}",
        f"GRANT INSERT, UPDATE ON settings TO {g['admin']}",
        f"GRANT INSERT, UPDATE ON automations TO {g['admin']}",
        f"GRANT DELETE ON schedule_state TO {g['admin']}",
        f"GRANT INSERT, UPDATE, DELETE ON plugin_state, plugin_errors TO {users4}",
        f"GRANT INSERT, UPDATE, DELETE ON saved_views TO {users4}",
        f"GRANT USAGE, SELECT ON SEQUENCE saved_views_id_seq TO {users4}",
        f"GRANT INSERT, UPDATE ON api_keys TO {users4}",
        f"GRANT USAGE, SELECT ON SEQUENCE api_keys_id_seq TO {users4}",
        f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {g['worker']}",
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {g['worker']}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON team_config, schema_migrations FROM {g['worker']}",
        # Who a login is: only sharetui_link_login (admins) sets users.login.
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON users FROM {g['worker']}",
    ]
    for fn in WRITE_FUNCTIONS:
        out.append(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
        out.append(f"GRANT EXECUTE ON FUNCTION {fn} TO {users4}, {g['worker']}")
    # Only those who may share hold a recipient's share lock (marketing may not share).
    out.append(f"REVOKE ALL ON FUNCTION {HOLD_RECIPIENT} FROM PUBLIC")
    out.append(f"GRANT EXECUTE ON FUNCTION {HOLD_RECIPIENT} TO {writers}, {g['worker']}")
    return out


def _ddl(db: Database, statement: str) -> None:
    """Run a statement without parameters: psycopg then reads its ``%`` as plain text
    (the functions' ``format('%I', …)`` and ``RAISE '%'``)."""
    from peewee import __exception_wrapper__

    with __exception_wrapper__:
        db.cursor().execute(statement)


def init_team(db: Database, prefix: str = DEFAULT_PREFIX) -> Names:
    """Set the (migrated) database up for team mode; idempotent. Run as the setup role."""
    check_prefix(prefix)
    owner, schema = db.execute_sql("SELECT current_user::text, current_schema()").fetchone()
    cfg = config(db)
    if cfg.get("role_prefix") and cfg["role_prefix"] != prefix:
        raise UsageError(
            f"this database's team roles use the prefix {cfg['role_prefix']!r}: "
            f"run sharetui team init --role-prefix {cfg['role_prefix']}"
        )
    names = Names(prefix, cfg.get("owner", owner), schema)
    if names.owner != owner:
        raise UsageError(f"run sharetui team init as {names.owner}, the role that set this database up")
    with db.atomic():
        db.execute_sql("SELECT pg_advisory_xact_lock(727275)")
        for which in GROUPS:
            role = names.group(which)
            exists = db.execute_sql("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                db.execute_sql(f"CREATE ROLE {ident(role)} NOLOGIN")
        for statement in [*_functions(names), *_policies(names), *_grants(names)]:
            _ddl(db, statement)
        for table, guard in (
            ("leads", "record"),
            ("opportunities", "record"),
            ("activities", "child"),
            ("tasks", "child"),
        ):
            db.execute_sql(f"DROP TRIGGER IF EXISTS sharetui_guard ON {table}")
            db.execute_sql(
                f"CREATE TRIGGER sharetui_guard BEFORE INSERT OR UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION sharetui_guard_{guard}()"
            )
        db.execute_sql("DROP TRIGGER IF EXISTS sharetui_sync_login ON users")
        db.execute_sql(
            "CREATE TRIGGER sharetui_sync_login AFTER INSERT OR UPDATE OF role, active, login ON users "
            "FOR EACH ROW EXECUTE FUNCTION sharetui_sync_login()"
        )
        # Logins linked before sharetui_link_login recorded them: those in this prefix's groups.
        db.execute_sql(
            "INSERT INTO team_config (key, value) SELECT 'login:' || u.login, 'linked' FROM users u "
            "JOIN pg_roles r ON r.rolname = u.login WHERE EXISTS (SELECT 1 FROM pg_auth_members m "
            "JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid AND g.rolname = ANY(%s)) "
            "ON CONFLICT (key) DO NOTHING",
            ([names.group(g) for g in ("admin", "manager", "marketing", "sales")],),
        )
        for key, value in (
            ("mode", "team"),
            ("role_prefix", prefix),
            ("owner", owner),
            ("functions", str(FUNCTIONS_VERSION)),
        ):
            db.execute_sql(
                "INSERT INTO team_config (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (key, value),
            )
    return names


def set_test_clock(db: Database) -> None:
    """Mark the database as a test database: a session may set its own time."""
    db.execute_sql(
        "INSERT INTO team_config (key, value) VALUES ('test_clock', 'on') "
        "ON CONFLICT (key) DO UPDATE SET value = 'on'"
    )


def link_login(db: Database, user_id: int, login: str, *, create: bool, password: str | None) -> None:
    """Create (``create``) or link the login role of a user; the password travels as a
    SCRAM verifier only, never as text."""
    name = check_login(login)
    verifier = scram_verifier(db, name, password) if password else None
    db.execute_sql("SELECT sharetui_link_login(%s, %s, %s, %s)", (user_id, name, verifier, create))


def add_worker_login(db: Database, login: str, prefix: str, password: str | None) -> bool:
    """Create (or reuse) a LOGIN role in ``<prefix>worker``. Returns whether it was created."""
    name = check_login(login)
    exists = db.execute_sql("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    if not exists:
        db.execute_sql(f"CREATE ROLE {ident(name)} LOGIN")
    if password:
        db.execute_sql(f"ALTER ROLE {ident(name)} PASSWORD {literal(scram_verifier(db, name, password))}")
    db.execute_sql(f"GRANT {ident(prefix + 'worker')} TO {ident(name)}")
    return not exists


def drop_roles(db: Database, prefix: str, logins: list[str] | tuple[str, ...] = ()) -> None:
    """Drop the group roles (and the given logins) of ``prefix``: for tests, after their
    database is gone. Roles that still own or hold something elsewhere stay."""
    for name in [*logins, *(prefix + g for g in GROUPS)]:
        db.execute_sql(f"DROP ROLE IF EXISTS {ident(name)}")


__all__: list[Any] = [
    "DEFAULT_PREFIX",
    "FUNCTIONS_VERSION",
    "GROUPS",
    "RLS_TABLES",
    "ServerClock",
    "add_worker_login",
    "config",
    "init_team",
    "link_login",
    "row_security",
    "scram_verifier",
    "set_test_clock",
]
