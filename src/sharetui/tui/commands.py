"""The command palette's record finder: type an id (``12``, ``lead 12``, ``opp 3``)
or part of a name, and jump to the record. It searches through the same visible
list the Leads and Opportunities sections show, so it offers only records the
acting user may read."""

from __future__ import annotations

import asyncio
from functools import partial

from rich.text import Text
from textual.command import Hit, Hits, Provider

from sharetui.domain.records import RecordRef
from sharetui.tui.base import tui_app

LIMIT = 8  # records of each kind offered for one query


class RecordFinder(Provider):
    async def search(self, query: str) -> Hits:
        text = query.strip()
        if len(text) < 1:
            return
        app = tui_app(self)
        if app.session.user is None:
            return
        found = await asyncio.to_thread(app.session.find_records, text, LIMIT)
        for rank, (ref, name) in enumerate(found):
            noun = "Lead" if ref.entity.value == "lead" else "Opportunity"
            title = f"{noun} {ref.id}: {name}"
            yield Hit(
                1.0 - rank / (len(found) + 1),
                Text(title),  # a name is data: never markup
                partial(app.open_record, ref),
                text=title,
                help="open it",
            )


__all__ = ["RecordFinder", "RecordRef"]
