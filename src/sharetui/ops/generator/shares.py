"""The generator's share writers: who gets which lead (within each user's room under
the share cap), when each grant starts, expires or ended, and the grants, share
requests and history rows the sharing service would have written for them.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sharetui.ops.generator.bulk import DAY, BulkLoad
from sharetui.ops.generator.pools import _cum

# Share durations: the text a user types, its length, how common.
_DURATIONS = (("7d", 7, 20), ("14d", 14, 20), ("30d", 30, 30), ("90d", 90, 20), ("180d", 180, 10))
_PAST_EXPIRY = 0.06  # share of active grants already past expiry: the sweeper's work
_ENDED = 10  # one ended (expired or revoked) grant per this many active ones
_CONTEXT = 10  # up to one active grant in this many is made in an activity's context


def _allocate(total: int, room: list[int], weights: list[float]) -> list[int]:
    """Split ``total`` over slots by weight, never above a slot's room (needs sum(room) >= total)."""
    quota = [0] * len(room)
    remaining = total
    open_slots = [i for i, r in enumerate(room) if r > 0]
    while remaining > 0 and open_slots:
        weight = sum(weights[i] for i in open_slots)
        given = 0
        for i in open_slots:
            take = min(int(remaining * weights[i] / weight), room[i] - quota[i])
            quota[i] += take
            given += take
        if given == 0:  # less is left than one each: hand it out one at a time
            for i in open_slots:
                if given == remaining:
                    break
                quota[i] += 1
                given += 1
        remaining -= given
        open_slots = [i for i in open_slots if quota[i] < room[i]]
    return quota


@dataclass(slots=True)
class _Grant:
    starts: int
    expires: int
    ended: int | None
    state: str
    user: int
    lead: int  # index among the generated leads
    context: int | None
    until_completed: bool
    access: int
    duration: str
    requester: int


class ShareWriters(BulkLoad):
    """The shares part of the generator (a mixin: it reads the users, leads and
    activities the record writers left on ``self``)."""

    # -- shares ----------------------------------------------------------------------------------
    def pick_pairs(self) -> list[tuple[int, int, int | None, bool]]:
        """Who gets which lead, as (user, lead index, context activity, until completed):
        a tenth in the context of an activity the recipient owns, the rest spread over
        the active sales users by weight, each within their room under the cap."""
        rng = self.rng("grants.pairs")
        r = rng.random
        room = dict(self.room_of)
        owner = self.owner
        n_leads = self.n_leads
        owned = Counter(owner)
        taken: dict[int, set[int]] = {}
        pairs: list[tuple[int, int, int | None, bool]] = []
        candidates = list(self.context_candidates)
        rng.shuffle(candidates)
        for aid, li, uid, still_open in candidates:
            if len(pairs) >= self.n_grants // _CONTEXT:
                break
            leads = taken.setdefault(uid, set())
            if li in leads or room.get(uid, 0) <= 0:
                continue
            leads.add(li)
            room[uid] -= 1
            pairs.append((uid, li, aid, still_open and r() < 0.3))
        users = [u for u in self.sales_ids if room.get(u, 0) > 0]
        quota = _allocate(
            self.n_grants - len(pairs), [room[u] for u in users], [0.2 + 1.6 * r() for _ in users]
        )
        for uid, k in zip(users, quota, strict=True):
            if not k:
                continue
            leads = taken.setdefault(uid, set())
            free = n_leads - owned.get(uid, 0) - len(leads)
            if k * 3 < free:  # plenty to choose from: draw until enough are new
                picked = 0
                while picked < k:
                    li = int(r() * n_leads)
                    if owner[li] != uid and li not in leads:
                        leads.add(li)
                        pairs.append((uid, li, None, False))
                        picked += 1
            else:
                pool = [li for li in range(n_leads) if owner[li] != uid and li not in leads]
                pairs.extend((uid, li, None, False) for li in rng.sample(pool, k))
        return pairs

    def plan_grants(self) -> tuple[list[_Grant], int]:
        """Every grant with its times and requester, in time order; and how many
        active ones are already past expiry."""
        pairs = self.pick_pairs()
        rng = self.rng("grants.times")
        r = rng.random
        now, owner = self.now, self.owner
        managers = self.managers
        can_share = set(self.active_sales) if self.owners_can_share else set()

        def requester(li: int) -> int:
            """Mostly the lead's owner; else (and when owners may not share) a manager."""
            if owner[li] in can_share and (not managers or r() < 0.75):
                return owner[li]
            return managers[int(r() * len(managers))]

        n_ended = self.n_grants // _ENDED
        durations = rng.choices(
            _DURATIONS, cum_weights=_cum([d[2] for d in _DURATIONS]), k=len(pairs) + n_ended
        )
        grants: list[_Grant] = []
        past = 0
        for (uid, li, ctx, until), (text, days, _) in zip(pairs, durations, strict=False):
            length = days * DAY
            if r() < _PAST_EXPIRY:
                expires = now - 60 - int(r() * 14 * DAY)
                past += 1
            else:
                expires = now + 60 + int(r() * (length - 60))
            access = 2 if r() < 0.3 else 1
            grants.append(
                _Grant(
                    expires - length,
                    expires,
                    None,
                    "active",
                    uid,
                    li,
                    ctx,
                    until,
                    access,
                    text,
                    requester(li),
                )
            )
        # Ended grants, older: half expired (the sweeper's work), half revoked by their requester.
        recipients = list(self.room_of)  # active, and not the owner of every lead
        for e, (text, days, _) in enumerate(durations[len(pairs) :]):
            uid = recipients[int(r() * len(recipients))]
            li = int(r() * self.n_leads)
            while owner[li] == uid:
                li = int(r() * self.n_leads)
            length = days * DAY
            if e < n_ended - n_ended // 2:
                expires = now - 3600 - int(r() * 365 * DAY)
                starts, ended, state = expires - length, expires, "expired"
            else:
                starts = now - 3600 - int(r() * 365 * DAY)
                expires = starts + length
                span = min(expires, now) - starts
                ended, state = starts + 60 + int(r() * max(1, span - 120)), "revoked"
            access = 2 if r() < 0.3 else 1
            grants.append(
                _Grant(starts, expires, ended, state, uid, li, None, False, access, text, requester(li))
            )
        grants.sort(key=lambda g: g.starts)  # grant ids grow with time, as in real use
        return grants, past

    def write_grants(self) -> None:
        t = time.perf_counter()
        grants, past = self.plan_grants() if self.n_grants else ([], 0)
        revoked = [i for i, g in enumerate(grants) if g.state == "revoked"]
        n_expired = sum(1 for g in grants if g.state == "expired")
        for table, adding in (("grants", len(grants)), ("share_requests", len(grants) + len(revoked))):
            self.defer_indexes(table, adding)
        grant0 = self.reserve("grants", len(grants))
        request0 = self.reserve("share_requests", len(grants) + len(revoked))
        # Requests in time order: each grant's share request, and the revoke requests.
        shares = [(g.starts, i, 0) for i, g in enumerate(grants)]
        revokes = sorted((grants[i].ended, i, 1) for i in revoked)
        share_request = [0] * len(grants)
        revoke_request: dict[int, int] = {}
        for offset, (_, i, kind) in enumerate(heapq.merge(shares, revokes)):
            if kind == 0:
                share_request[i] = request0 + offset
            else:
                revoke_request[i] = request0 + offset
        stamp = self.stamp
        times = [
            (stamp(g.starts), stamp(g.expires), stamp(g.ended) if g.ended is not None else None)
            for g in grants
        ]
        names, lead0 = self.names, self.lead0

        def grant_rows():
            for i, g in enumerate(grants):
                starts, expires, ended = times[i]
                reason = (
                    "expired"
                    if g.state == "expired"
                    else f"revoked by {names[g.requester]}"
                    if ended
                    else None
                )
                yield (
                    grant0 + i, "lead", lead0 + g.lead, g.user, g.context, g.context or 0, g.access,
                    starts, expires, g.state, "api", share_request[i], g.until_completed, ended, reason,
                    starts, ended or starts,
                )  # fmt: skip

        def request_rows():
            for _, i, kind in heapq.merge(shares, revokes):
                g = grants[i]
                when = times[i][0] if kind == 0 else times[i][2]
                head = (
                    (share_request[i], "share", "granted")
                    if kind == 0
                    else (revoke_request[i], "revoke", "revoked")
                )
                yield (
                    *head, "completed", "lead", lead0 + g.lead, names[g.user], g.user, g.requester,
                    g.context, False,
                    g.access if kind == 0 else None, g.duration if kind == 0 else None,
                    g.until_completed if kind == 0 else False, "api", grant0 + i, when, when,
                )  # fmt: skip

        self.insert_batches("grants", "grants", grant_rows(), len(grants))
        self.stage("grants", len(grants), t)
        t = time.perf_counter()
        self.insert_batches("share_requests", "share requests", request_rows(), len(grants) + len(revoked))
        self.stage("share requests", len(grants) + len(revoked), t)
        self.report.counts["grants"] = len(grants)
        self.report.counts["share_requests"] = len(grants) + len(revoked)
        self.write_history(grants, times, grant0, share_request, revoke_request)
        self.report.grants_by_state = {
            "active": len(grants) - n_expired - len(revoked),
            "past_expiry": past,
            "expired": n_expired,
            "revoked": len(revoked),
        }

    def write_history(
        self,
        grants: list[_Grant],
        times: list[tuple[Any, Any, Any]],
        grant0: int,
        share_request: list[int],
        revoke_request: dict[int, int],
    ) -> None:
        """What the service writes, in time order: ``share`` + ``granted`` for every
        grant; ``expired`` (as the sweeper writes it); ``revoked`` + ``revoke``."""
        t = time.perf_counter()
        starts = [(g.starts, i, 0) for i, g in enumerate(grants)]
        ends = sorted((g.ended, i, 1) for i, g in enumerate(grants) if g.ended is not None)
        total = 2 * len(grants) + len(ends) + len(revoke_request)
        self.defer_indexes("history", total)
        first = self.reserve("history", total)
        names, lead0 = self.names, self.lead0

        def rows():
            next_id = first
            for _, i, kind in heapq.merge(starts, ends):
                g = grants[i]
                began, expires, ended = times[i]
                record = ("lead", lead0 + g.lead, g.user, names[g.user], g.access, g.context)
                who = names[g.requester]
                if kind == 0:
                    request = share_request[i]
                    for event in ("share", "granted"):
                        yield (next_id, began, event, "completed", None, request, grant0 + i, *record,
                               g.duration, began, expires, "api", g.requester, who, None)  # fmt: skip
                        next_id += 1
                elif g.state == "expired":
                    yield (next_id, expires, "expired", "completed", "expired", share_request[i], grant0 + i,
                           *record, None, began, expires, "api", None, "", None)  # fmt: skip
                    next_id += 1
                else:
                    request = revoke_request[i]
                    yield (next_id, ended, "revoked", "completed", f"revoked by {who}", request, grant0 + i,
                           *record, None, began, expires, "api", g.requester, who, None)  # fmt: skip
                    yield (next_id + 1, ended, "revoke", "completed", None, request, grant0 + i,
                           *record, None, began, expires, "api", g.requester, who, None)  # fmt: skip
                    next_id += 2

        self.insert_batches("history", "history", rows(), total)
        self.report.counts["history"] = total
        self.stage("history", total, t)
