"""Roles, access levels, sales-group levels and entity types (DESIGN .1-3)."""

from __future__ import annotations

from enum import IntEnum, StrEnum

from sharetui.errors import UsageError


class Role(StrEnum):
    ADMIN = "admin"
    SALES_MANAGER = "sales_manager"
    MARKETING = "marketing"
    SALES = "sales"

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value.strip().lower().replace("-", "_"))
        except ValueError:
            raise UsageError(
                f"unknown role {value!r}: use one of {', '.join(r.value for r in cls)}"
            ) from None


class Access(IntEnum):
    """Levels of access, ordered. Values match LeadSquared's ``AccessType``."""

    NONE = 0
    READ = 1
    EDIT = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int) -> Access:
        if isinstance(value, int) and not isinstance(value, bool) and value in (1, 2):
            return cls(value)
        if isinstance(value, str) and value.strip().lower() in ("read", "edit"):
            return cls[value.strip().upper()]
        raise UsageError(f"unknown access {value!r}: use read or edit")


class GroupLevel(IntEnum):
    """Membership level in a sales group."""

    OWN = 0  # own records only
    VIEW = 1  # read the records owned by members
    MODIFY = 2  # edit them
    MANAGE = 3  # edit them and manage members

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def grants(self) -> Access:
        if self >= GroupLevel.MODIFY:
            return Access.EDIT
        if self == GroupLevel.VIEW:
            return Access.READ
        return Access.NONE

    @classmethod
    def parse(cls, value: str) -> GroupLevel:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise UsageError(f"unknown group level {value!r}: use own, view, modify or manage") from None


class EntityType(StrEnum):
    LEAD = "lead"
    OPPORTUNITY = "opportunity"

    @property
    def table(self) -> str:
        return "leads" if self is EntityType.LEAD else "opportunities"

    @property
    def short(self) -> str:
        return "lead" if self is EntityType.LEAD else "opp"

    @classmethod
    def parse(cls, value: str | int) -> EntityType:
        """Accept ``lead``/``opp``/``opportunity`` and LeadSquared's ``1``/``5``."""
        if isinstance(value, int) and not isinstance(value, bool):
            if value == 1:
                return cls.LEAD
            if value == 5:
                return cls.OPPORTUNITY
        elif isinstance(value, str):
            text = value.strip().lower()
            if text in ("lead", "leads", "1"):
                return cls.LEAD
            if text in ("opp", "opps", "opportunity", "opportunities", "5"):
                return cls.OPPORTUNITY
        raise UsageError(f"unknown record type {value!r}: use lead or opp")


ROLE_ACCESS = {
    Role.ADMIN: Access.EDIT,
    Role.SALES_MANAGER: Access.EDIT,
    Role.MARKETING: Access.READ,
    Role.SALES: Access.NONE,
}

SHARE_MANAGERS = frozenset({Role.ADMIN, Role.SALES_MANAGER})

# Distinct records of a kind one user may hold live shares on, unless an admin sets
# share_cap_leads / share_cap_opportunities.
DEFAULT_SHARE_CAP = 2000


class Source(StrEnum):
    API = "api"
    AUTOMATION = "automation"
    MANUAL = "manual"
    PLUGIN = "plugin"
