"""Generate a large, realistic company into an existing database, fast.

:func:`generate` adds users (an admin when there is no active one, a couple of
sales managers, a marketing user and sales users spread over sales groups of
10-30 members), the activity types the stories need, leads, opportunities,
activities, tasks and shares (grants with their share requests and history),
for demos, load tests and benchmarks. :func:`check_integrity` (from
:mod:`sharetui.core.integrity`) checks the result.

How it stays fast (a million leads in seconds, not minutes):

- Names come from pools made once with Faker (calling Faker per row is far too
  slow), combined by seeded ``random.Random`` streams, one per purpose, so a
  seed gives the same company whatever the batch size.
- Rows go in with prepared ``INSERT`` statements through ``executemany`` in
  large batches, all in one transaction: a failure leaves nothing behind.
- Ids are reserved up front after the current maximum (on PostgreSQL the
  ``SERIAL`` sequences are moved past the block, under table locks, so other
  writers never collide with it).
- A table that at least doubles loses its secondary indexes for the load and
  gets them back, from the database's own DDL, before the commit: one sort
  per index beats a million random B-tree inserts. On SQLite the search index
  (FTS5) is rebuilt once the same way, its triggers set aside for the load.

Like ``sharetui load``, this is an import: it writes no outbox events (no
automation runs on the generated records), calls no plugin hooks and does not
go through the sharing service. Grants look as the service would have left
them: a ``share`` request (source ``api``) and ``share`` + ``granted`` history
rows each; ``expired`` / ``revoked`` rows (and the revoke request) for ended
ones. Some active grants are already past their expiry, so the next sweep has
work to do.

The package, in the order a run goes: :mod:`.company` plans and runs the stages,
:mod:`.records` and :mod:`.shares` write the rows, :mod:`.bulk` holds the
bulk-load tools (and :data:`~.bulk.BULK_INDEX_ROWS`, where tests patch it) and
:mod:`.pools` what the company is drawn from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sharetui.core.access.gate import Capability
from sharetui.core.integrity import check_integrity
from sharetui.errors import UsageError
from sharetui.ops.generator.bulk import GenerateReport, Progress
from sharetui.ops.generator.company import _Generator
from sharetui.ops.generator.pools import ACTIVITY_TYPES

if TYPE_CHECKING:
    from sharetui.core.service import Core
    from sharetui.db.models import User

MAX_COUNT = 50_000_000  # ids are 32-bit on PostgreSQL; far beyond any test company


def check_counts(*, leads: int, opportunities: int, users: int, grants: int) -> None:
    """Reject impossible numbers before anything is opened. Raises :class:`UsageError`."""
    given = {"leads": leads, "opportunities": opportunities, "users": users, "grants": grants}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"--{name} must be a whole number, not {value!r}")
        if value < 0:
            raise UsageError(f"--{name} must be 0 or more, not {value}")
        if value > MAX_COUNT:
            raise UsageError(f"--{name} must be at most {MAX_COUNT:,}, not {value:,}")
    if opportunities and not leads:
        raise UsageError("--opportunities needs leads to sit on: give --leads too")
    if grants and not leads:
        raise UsageError("--grants needs leads to share: give --leads too")


def generate(
    core: Core,
    *,
    leads: int,
    opportunities: int,
    users: int,
    grants: int,
    seed: int = 0,
    progress: Progress | None = None,
    actor: User | None,
) -> GenerateReport:
    """Fill the database with a large, realistic company (see the module docstring).
    Admins only (DESIGN §9); the system on a database with no users yet.

    Args:
        leads, opportunities: records to add; the new sales users own them.
        users: users to add, of all roles (with an admin only when no active one exists).
        grants: active lead shares to add, each to a new sales user on a lead
            they do not own, within the share cap; about 6% are already past
            expiry. One ended (``expired`` or ``revoked``) grant per ten active
            ones comes on top, as history.
        seed: the same seed, clock and starting database give the same company.
        progress: called as ``progress(stage, done, total)`` after each batch.

    Returns:
        A :class:`GenerateReport`. Bad numbers (negative, or more grants than
        the share cap allows) raise :class:`UsageError` with nothing written.
    """
    core.gate.require(actor, Capability.GENERATE)
    check_counts(leads=leads, opportunities=opportunities, users=users, grants=grants)
    return _Generator(core, leads, opportunities, users, grants, seed, progress).run()


__all__ = [
    "ACTIVITY_TYPES",
    "GenerateReport",
    "check_counts",
    "check_integrity",
    "generate",
]
