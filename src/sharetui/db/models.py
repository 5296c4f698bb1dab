"""Peewee models. Tables and indexes are named explicitly; times are naive UTC.

The schema is created and changed only by the numbered migrations in
``sharetui.db.migrations``; a test holds the two in agreement.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from peewee import (
    SQL,
    AutoField,
    BooleanField,
    CharField,
    CompositeKey,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    SmallIntegerField,
    TextField,
)

from sharetui.db.connection import database
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType


def check_lengths(model: type[Model], values: dict[str, Any]) -> None:
    """Refuse text longer than its column, naming it: PostgreSQL refuses it with a bare
    database error and SQLite stores it whole, so services check it the same for both."""
    from sharetui.errors import UsageError

    for key, value in values.items():
        limit = getattr(model._meta.fields.get(key), "max_length", None)
        if limit and isinstance(value, str) and len(value) > limit:
            raise UsageError(f"{key} is {len(value)} characters long: at most {limit} fit")


class JSONField(TextField):
    """JSON stored as text, the same on SQLite and PostgreSQL."""

    def db_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, sort_keys=True, ensure_ascii=False)

    def python_value(self, value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        return json.loads(value)


def load_fields(value: Any) -> Any:
    """A record's custom ``fields`` as stored: a JSON object. A damaged value (text that
    is no JSON, or JSON that is no object, written around sharetui) reads as no fields,
    logged, so one bad row never stops ``leads show``, a list or the worker; the next
    change to the fields writes a sound object over it."""
    if value is None or isinstance(value, dict):
        return value
    try:
        loaded = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        logging.getLogger("sharetui.db").warning("a record's fields hold no JSON object: read as {}")
        return {}
    return loaded


class FieldsField(JSONField):
    """A record's custom ``fields`` (see :func:`load_fields`)."""

    def python_value(self, value: Any) -> Any:
        return load_fields(value)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaMigration(BaseModel):
    version = IntegerField(primary_key=True)
    name = CharField()
    applied_at = DateTimeField()

    class Meta:
        table_name = "schema_migrations"


class User(BaseModel):
    id = AutoField()
    username = CharField(max_length=64, unique=True)
    name = CharField(max_length=200)
    email = CharField(max_length=254, default="")
    role = CharField(max_length=32)
    active = BooleanField(default=True)
    created_at = DateTimeField()
    updated_at = DateTimeField()
    # Team mode: the PostgreSQL login (session_user) this user acts as (DESIGN §8).
    login = CharField(max_length=63, null=True, unique=True)

    class Meta:
        table_name = "users"


class SalesGroup(BaseModel):
    id = AutoField()
    name = CharField(max_length=100, unique=True)
    created_at = DateTimeField()

    class Meta:
        table_name = "sales_groups"


class GroupMember(BaseModel):
    group = ForeignKeyField(SalesGroup, column_name="group_id", on_delete="CASCADE", index=False)
    user = ForeignKeyField(User, column_name="user_id", index=False)
    level = SmallIntegerField()  # sharetui.domain.roles.GroupLevel

    class Meta:
        table_name = "group_members"
        primary_key = CompositeKey("group", "user")
        indexes = ((("user", "group", "level"), False),)


class Lead(BaseModel):
    id = AutoField()
    ref = CharField(max_length=64, null=True, unique=True)
    name = CharField(max_length=200)
    email = CharField(max_length=254, default="")
    phone = CharField(max_length=64, default="")
    company = CharField(max_length=200, default="")
    stage = CharField(max_length=64, default="new")
    source = CharField(max_length=64, default="")
    owner = ForeignKeyField(User, column_name="owner_id", index=False)
    fields = FieldsField(default="{}")
    created_at = DateTimeField()
    updated_at = DateTimeField()

    @property
    def record_ref(self) -> RecordRef:
        return RecordRef(EntityType.LEAD, self.id)

    class Meta:
        table_name = "leads"
        # The lists' sort indexes are expressions (lower(name), ...) written per dialect in
        # migration 0013 (sort_indexes), which Peewee's model indexes cannot say.
        indexes = ((("owner", "id"), False),)


class Opportunity(BaseModel):
    id = AutoField()
    ref = CharField(max_length=64, null=True, unique=True)
    lead = ForeignKeyField(Lead, column_name="lead_id", index=True)
    name = CharField(max_length=200)
    type = CharField(max_length=100, default="")
    stage = CharField(max_length=64, default="prospecting")
    amount = FloatField(default=0)
    owner = ForeignKeyField(User, column_name="owner_id", index=False)
    fields = FieldsField(default="{}")
    created_at = DateTimeField()
    updated_at = DateTimeField()

    @property
    def record_ref(self) -> RecordRef:
        return RecordRef(EntityType.OPPORTUNITY, self.id)

    class Meta:
        table_name = "opportunities"
        indexes = ((("owner", "id"), False),)  # and the sort indexes of migration 0013


class ActivityType(BaseModel):
    id = AutoField()
    name = CharField(max_length=100, unique=True)
    entity = CharField(max_length=16)  # lead | opportunity
    captures_owner = BooleanField(default=True)

    class Meta:
        table_name = "activity_types"


class Activity(BaseModel):
    id = AutoField()
    ref = CharField(max_length=64, null=True, unique=True)
    type = ForeignKeyField(ActivityType, column_name="type_id", index=False)
    lead = ForeignKeyField(Lead, column_name="lead_id", null=True, index=True)
    opportunity = ForeignKeyField(Opportunity, column_name="opportunity_id", null=True, index=True)
    owner = ForeignKeyField(User, column_name="owner_id", null=True, index=False)
    note = TextField(default="")
    fields = FieldsField(default="{}")
    status = CharField(max_length=16, default="open")  # open | completed
    occurred_at = DateTimeField()
    created_at = DateTimeField()
    updated_at = DateTimeField()
    completed_at = DateTimeField(null=True)
    deleted_at = DateTimeField(null=True)

    class Meta:
        table_name = "activities"


class Task(BaseModel):
    id = AutoField()
    ref = CharField(max_length=64, null=True, unique=True)
    lead = ForeignKeyField(Lead, column_name="lead_id", null=True, index=True)
    opportunity = ForeignKeyField(Opportunity, column_name="opportunity_id", null=True, index=True)
    owner = ForeignKeyField(User, column_name="owner_id", index=False)
    subject = CharField(max_length=300)
    due_at = DateTimeField(null=True)
    reminder_at = DateTimeField(null=True)
    reminded_at = DateTimeField(null=True)
    completed_at = DateTimeField(null=True)
    created_at = DateTimeField()
    updated_at = DateTimeField()
    # Who added the task: its reminder fires automations acting for them (DESIGN §9),
    # so picking a task's owner and reminder hands nothing on that they could not.
    created_by = ForeignKeyField(User, column_name="created_by_id", null=True, index=False)

    class Meta:
        table_name = "tasks"
        indexes = ((("reminded_at", "reminder_at"), False),)


class ShareRequest(BaseModel):
    id = AutoField()
    action = CharField(max_length=16)  # share | revoke
    outcome = CharField(max_length=16, null=True)  # granted | renewed | revoked
    status = CharField(max_length=16)  # processing | completed | failed
    reason = TextField(null=True)
    entity_type = CharField(max_length=16)
    entity_id = IntegerField(null=True)
    recipient_name = CharField(max_length=100, default="")
    recipient_id = IntegerField(null=True)
    requester_id = IntegerField(null=True)
    context_activity_id = IntegerField(null=True)
    all_contexts = BooleanField(default=False)
    access = SmallIntegerField(null=True)
    duration = CharField(max_length=64, null=True)
    until_completed = BooleanField(default=False)
    source = CharField(max_length=16)
    automation_run_id = IntegerField(null=True)
    grant_id = IntegerField(null=True)
    batch_id = CharField(max_length=64, null=True)
    created_at = DateTimeField()
    finished_at = DateTimeField(null=True)

    class Meta:
        table_name = "share_requests"
        indexes = (
            (("status", "id"), False),
            (("batch_id", "id"), False),
        )


class Grant(BaseModel):
    id = AutoField()
    entity_type = CharField(max_length=16)
    entity_id = IntegerField()
    user = ForeignKeyField(User, column_name="user_id", index=False)
    context_activity_id = IntegerField(null=True)
    # COALESCE(context_activity_id, 0): unique indexes treat NULLs as distinct.
    context_key = IntegerField(default=0)
    access = SmallIntegerField()  # 1 read, 2 edit (LeadSquared's AccessType)
    starts_at = DateTimeField()
    expires_at = DateTimeField()
    state = CharField(max_length=16)  # active | expired | revoked
    source = CharField(max_length=16)
    request_id = IntegerField(null=True)
    until_completed = BooleanField(default=False)
    warned_at = DateTimeField(null=True)
    ended_at = DateTimeField(null=True)
    ended_reason = TextField(null=True)
    created_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        table_name = "grants"
        indexes = (
            # The access check and the visible-records query: covering.
            (("user", "entity_type", "entity_id", "state", "expires_at", "access"), False),
            (("entity_type", "entity_id", "state"), False),
            (("state", "expires_at"), False),
            (("context_activity_id",), False),
        )


# One active grant per (record, user, context): re-sharing renews it.
Grant.add_index(
    Grant.index(Grant.entity_type, Grant.entity_id, Grant.user, Grant.context_key, unique=True).where(
        SQL("state = 'active'")
    )
)


class HistoryEvent(BaseModel):
    id = AutoField()
    at = DateTimeField()
    # requests: share | renew | revoke; lifecycle: granted | renewed | revoked |
    # expired | expiring_soon
    event = CharField(max_length=16)
    status = CharField(max_length=16)  # processing | completed | failed
    reason = TextField(null=True)
    request_id = IntegerField(null=True)
    grant_id = IntegerField(null=True)
    entity_type = CharField(max_length=16)
    entity_id = IntegerField(null=True)
    user_id = IntegerField(null=True)
    user_name = CharField(max_length=100, default="")
    access = SmallIntegerField(null=True)
    context_activity_id = IntegerField(null=True)
    duration = CharField(max_length=64, null=True)
    starts_at = DateTimeField(null=True)
    expires_at = DateTimeField(null=True)
    source = CharField(max_length=16)
    requester_id = IntegerField(null=True)
    requester_name = CharField(max_length=100, default="")
    automation_run_id = IntegerField(null=True)

    class Meta:
        table_name = "history"
        indexes = (
            (("entity_type", "entity_id", "id"), False),
            (("user_id", "id"), False),
            (("grant_id",), False),
            (("at", "id"), False),  # the ledger: newest first by time, keyset-paged
        )


class OutboxEvent(BaseModel):
    """Events written in the same transaction as the change that caused them."""

    id = AutoField()
    topic = CharField(max_length=64)
    entity_type = CharField(max_length=16, null=True)
    entity_id = IntegerField(null=True)
    payload = JSONField(default="{}")
    created_at = DateTimeField()
    processed_at = DateTimeField(null=True)
    attempts = IntegerField(default=0)

    class Meta:
        table_name = "outbox"
        indexes = ((("processed_at", "id"), False),)


class Setting(BaseModel):
    key = CharField(max_length=64, primary_key=True)
    value = JSONField()

    class Meta:
        table_name = "settings"


class PluginState(BaseModel):
    """A small key/value store private to each plugin (e.g. a rotation pointer)."""

    plugin = CharField(max_length=100)
    key = CharField(max_length=200)
    value = JSONField(null=True)
    updated_at = DateTimeField()

    class Meta:
        table_name = "plugin_state"
        primary_key = CompositeKey("plugin", "key")


class PluginError(BaseModel):
    """Failures of plugins, kept so ``sharetui plugins`` can show them later."""

    id = AutoField()
    plugin = CharField(max_length=100)
    hook = CharField(max_length=100)
    error = TextField()
    count = IntegerField(default=1)
    first_at = DateTimeField()
    last_at = DateTimeField()

    class Meta:
        table_name = "plugin_errors"
        indexes = ((("plugin", "hook", "error"), True),)


class Automation(BaseModel):
    """Trigger -> conditions -> actions (DESIGN .4)."""

    id = AutoField()
    name = CharField(max_length=200, unique=True)
    description = TextField(default="")
    trigger_type = CharField(max_length=64)
    trigger_config = JSONField(default="{}")
    conditions = JSONField(default="[]")
    actions = JSONField(default="[]")
    status = CharField(max_length=16, default="draft")  # draft | published | paused
    # Acts only on outbox events after this id: those that happen once it is published.
    since_event_id = IntegerField(null=True)
    starts_at = DateTimeField(null=True)
    ends_at = DateTimeField(null=True)
    created_by = IntegerField(null=True)
    source_text = TextField(default="")
    created_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        table_name = "automations"
        indexes = ((("status", "trigger_type"), False),)


class AutomationRun(BaseModel):
    """One run of an automation, with its trace."""

    id = AutoField()
    automation = ForeignKeyField(Automation, column_name="automation_id", on_delete="CASCADE", index=False)
    event_id = IntegerField(null=True)
    trigger_type = CharField(max_length=64)
    entity_type = CharField(max_length=16, null=True)
    entity_id = IntegerField(null=True)
    status = CharField(max_length=16)  # succeeded | failed | skipped
    reason = TextField(null=True)
    trace = JSONField(default="{}")
    dry_run = BooleanField(default=False)
    started_at = DateTimeField()
    finished_at = DateTimeField(null=True)
    duration_ms = FloatField(default=0)

    class Meta:
        table_name = "automation_runs"
        indexes = (
            (("automation", "id"), False),
            (("automation", "entity_type", "entity_id", "started_at"), False),
            # A retried event never makes a second run of the same automation.
            (("automation", "event_id", "entity_type", "entity_id"), True),
            (("started_at",), False),
        )


class AutomationStep(BaseModel):
    """What one action of a run did; (run, step) is unique, so a retry never repeats it."""

    run = ForeignKeyField(AutomationRun, column_name="run_id", on_delete="CASCADE", index=False)
    step = IntegerField()
    action = CharField(max_length=64)
    status = CharField(max_length=16)
    outcome = JSONField(default="{}")

    class Meta:
        table_name = "automation_steps"
        primary_key = CompositeKey("run", "step")


class ScheduleState(BaseModel):
    """Where each schedule stands: the last firing handled."""

    automation = ForeignKeyField(
        Automation, column_name="automation_id", primary_key=True, on_delete="CASCADE"
    )
    last_fire_at = DateTimeField(null=True)
    updated_at = DateTimeField()

    class Meta:
        table_name = "schedule_state"


class Notification(BaseModel):
    """Messages from the ``notify`` action, per user."""

    id = AutoField()
    user = ForeignKeyField(User, column_name="user_id", index=False)
    message = TextField()
    entity_type = CharField(max_length=16, null=True)
    entity_id = IntegerField(null=True)
    automation_run_id = IntegerField(null=True)
    created_at = DateTimeField()
    read_at = DateTimeField(null=True)

    class Meta:
        table_name = "notifications"
        indexes = ((("user", "id"), False),)


class TeamConfig(BaseModel):
    """How a PostgreSQL database was set up: team mode, its role prefix, the test clock.

    Written only by the setup role (``sharetui init --test-clock``, ``sharetui team init``);
    logins may read it."""

    key = CharField(max_length=64, primary_key=True)
    value = TextField()

    class Meta:
        table_name = "team_config"


class WorkerLease(BaseModel):
    """Who holds a worker role (on SQLite one worker runs, a second waits)."""

    name = CharField(max_length=64, primary_key=True)
    holder = CharField(max_length=200)
    expires_at = DateTimeField()

    class Meta:
        table_name = "worker_leases"


class SavedView(BaseModel):
    """A saved, named list filter ("smart view") of leads or opportunities: the list's
    search term, field conditions in the automation condition format, a sort and the
    columns. ``owner`` is whose view it is; none: an admin shared it with everyone."""

    id = AutoField()
    name = CharField(max_length=80)
    entity_type = CharField(max_length=16)
    owner = ForeignKeyField(User, column_name="owner_id", null=True, index=False)
    search = TextField(default="")
    conditions = JSONField(default="[]")
    sort = CharField(max_length=8, default="id")
    columns = JSONField(default="[]")
    created_by = ForeignKeyField(User, column_name="created_by_id", index=False)
    created_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        table_name = "saved_views"
        indexes = ((("owner", "entity_type", "name"), True),)


class ApiKey(BaseModel):
    """A key of the HTTP API (DESIGN §10): it acts as its user. Only a KDF hash of the
    secret is kept (``secret_hash``: algorithm, parameters, salt and hash)."""

    id = AutoField()
    user = ForeignKeyField(User, column_name="user_id", index=False)
    access_key = CharField(max_length=64, unique=True)
    secret_hash = CharField(max_length=255)
    label = CharField(max_length=100, default="")
    created_by_id = IntegerField(null=True)
    created_at = DateTimeField()
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)
    revoked_by_id = IntegerField(null=True)

    class Meta:
        table_name = "api_keys"
        indexes = ((("user", "id"), False),)


MODELS: list[type[BaseModel]] = [
    SchemaMigration,
    User,
    SalesGroup,
    GroupMember,
    Lead,
    Opportunity,
    ActivityType,
    Activity,
    Task,
    ShareRequest,
    Grant,
    HistoryEvent,
    OutboxEvent,
    Setting,
    PluginState,
    PluginError,
    Automation,
    AutomationRun,
    AutomationStep,
    ScheduleState,
    Notification,
    WorkerLease,
    TeamConfig,
    SavedView,
    ApiKey,
]
