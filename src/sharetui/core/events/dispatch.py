"""Lifecycle events reach plugins only once the transaction that made them commits.

Events wait on the database's after-commit callbacks (peewee's public
``after_commit``): a transaction that rolls back drops them with it. Inside a
:meth:`Dispatch.held` block events are held back first, so the block can drop
its own — the work of an automation step whose savepoint rolled back, or a dry
run — while the transaction around it goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING

from sharetui.sdk.types import RecordChange, ShareEvent

if TYPE_CHECKING:
    from sharetui.core.service import Core


class Dispatch:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._local = threading.local()

    def after_commit(self, event: ShareEvent | RecordChange) -> None:
        """Deliver ``event`` once the outermost transaction commits (now, outside one)."""
        plugins = self.core.plugins
        if isinstance(event, RecordChange):
            if not plugins.implements("sharetui_record_changed"):
                return
            deliver = partial(plugins.emit_record_change, event)
        else:
            if not plugins.listens_to(event.kind):
                return
            deliver = partial(plugins.emit, event)
        held: list[ShareEvent | RecordChange] | None = getattr(self._local, "held", None)
        if held is not None:
            held.append(event)
        else:
            self.core.db.after_commit(deliver)

    def listens_to_records(self) -> bool:
        """Whether a plugin listens to record changes (else nothing is loaded for them)."""
        return self.core.plugins.implements("sharetui_record_changed")

    @contextmanager
    def held(self) -> Iterator[list[ShareEvent | RecordChange]]:
        """Hold the events raised inside the block. When it ends normally they go on
        (to an enclosing block, else to after-commit); when it raises they are
        dropped. Clearing the yielded list drops them too (a dry run)."""
        outer = getattr(self._local, "held", None)
        mine: list[ShareEvent | RecordChange] = []
        self._local.held = mine
        try:
            yield mine
        except BaseException:
            mine.clear()
            raise
        finally:
            self._local.held = outer
        for event in mine:
            self.after_commit(event)
