"""The generator's writers for people and records: users and their sales groups,
activity types, leads, opportunities, activities and tasks, in that order (each
uses what the ones before it wrote: owners, lead ids, who may receive shares).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter

from sharetui.db.sql import Statement
from sharetui.domain.roles import GroupLevel, Role
from sharetui.ops.generator.bulk import BATCH, DAY, BulkLoad
from sharetui.ops.generator.pools import (
    _ACTIVITY_WEIGHTS,
    _LEAD_SOURCES,
    _LEAD_STAGES,
    _LEAD_TASKS,
    _NOTES,
    _OPP_STAGES,
    _OPP_TASKS,
    _OPP_TYPES,
    _PERSONAL_DOMAINS,
    _TEAMS,
    ACTIVITY_TYPES,
    _cum,
    _pools,
)


class RecordWriters(BulkLoad):
    """The users-and-records part of the generator (a mixin: it reads the plan and the
    counts the generator set, and leaves what the share writers need on ``self``)."""

    # -- users and groups ------------------------------------------------------------------------
    def write_users(self) -> None:
        t = time.perf_counter()
        total = len(self.roles)
        self.progress("users", 0, total)
        pools = self.pools = _pools(self.seed)
        rng = self.rng("users")
        first_id = self.reserve("users", total)
        first_sales = total - self.n_sales
        taken = set(self.usernames)
        self.names: dict[int, str] = {}  # user id -> username
        rows = []
        for i, role in enumerate(self.roles):
            f = int(rng.random() * len(pools.first))
            last = int(rng.random() * len(pools.last))
            base = "admin" if role == Role.ADMIN.value else f"{pools.first_slug[f]}.{pools.last_slug[last]}"
            username, n = base, 1
            while username in taken:
                n += 1
                username = f"{base}{n}"
            taken.add(username)
            uid = first_id + i
            active = not (i >= first_sales and (i - first_sales) in self.inactive)
            stamp = self.stamp(self.now - 30 * DAY - int(rng.random() * 3 * 365 * DAY))
            name = f"{pools.first[f]} {pools.last[last]}"
            rows.append((uid, username, name, f"{username}@example-bank.test", role, active, stamp, stamp))
            self.names[uid] = username
        self.insert("users", rows)
        self.sales_ids = list(range(first_id + first_sales, first_id + total))
        self.active_sales = [u for p, u in enumerate(self.sales_ids) if p not in self.inactive]
        # Active sales users who can receive shares, and on how many leads at most.
        self.room_of = {self.sales_ids[p]: r for p, r in enumerate(self.room) if r}
        managers = [first_id + i for i, r in enumerate(self.roles) if r == Role.SALES_MANAGER.value]
        if not managers:
            managers = [first_id + i for i, r in enumerate(self.roles) if r == Role.ADMIN.value]
        if not managers and self.existing_admin is not None:
            managers = [self.existing_admin[0]]
            self.names[self.existing_admin[0]] = self.existing_admin[1]
        self.managers = managers
        self.report.counts["users"] = total
        self.report.users_by_role = dict(Counter(self.roles))
        if self.inactive:
            self.report.users_by_role["sales_inactive"] = len(self.inactive)
        self.write_groups(rng)
        self.progress("users", total, total)
        self.stage(
            "users", total + self.report.counts["sales_groups"] + self.report.counts["group_members"], t
        )

    def write_groups(self, rng: random.Random) -> None:
        """Sales users in groups of 10-30: a manager each, then modify, view and own members."""
        members = list(self.sales_ids)
        rng.shuffle(members)
        sizes: list[int] = []
        left = len(members)
        while left:
            # Leave at least ten for the next group; the last one takes what is left.
            size = left if left <= 30 else rng.randint(10, min(30, left - 10))
            sizes.append(size)
            left -= size
        cities = self.pools.cities
        taken = set(self.group_names)
        names = []
        for i in range(len(sizes)):
            base = f"{cities[(i // len(_TEAMS)) % len(cities)]} {_TEAMS[i % len(_TEAMS)]}"
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base} {n}"
            taken.add(name)
            names.append(name)
        first_id = self.reserve("sales_groups", len(sizes))
        stamp = self.stamp(self.now - 3 * 365 * DAY)
        self.insert("sales_groups", [(first_id + i, name, stamp) for i, name in enumerate(names)])
        levels = [
            int(level) for level in (GroupLevel.OWN, GroupLevel.VIEW, GroupLevel.MODIFY, GroupLevel.MANAGE)
        ]
        cum = _cum((50, 25, 20, 5))
        rows = []
        at = 0
        for g, size in enumerate(sizes):
            for k, uid in enumerate(members[at : at + size]):
                level = int(GroupLevel.MANAGE) if k == 0 else rng.choices(levels, cum_weights=cum)[0]
                rows.append((first_id + g, uid, level))
            at += size
        self.insert("group_members", rows)
        self.report.counts["sales_groups"] = len(sizes)
        self.report.counts["group_members"] = len(rows)

    def write_activity_types(self) -> None:
        """Reuse the types that exist by name; add the missing ones."""
        t = time.perf_counter()
        found = {
            name: (int(i), entity, bool(captures))
            for i, name, entity, captures in Statement(
                "SELECT id, name, entity, captures_owner FROM activity_types"
            ).all()
        }
        missing = [name for name in ACTIVITY_TYPES if name not in found]
        first_id = self.reserve("activity_types", len(missing))
        rows = [(first_id + i, name, "lead", ACTIVITY_TYPES[name]) for i, name in enumerate(missing)]
        self.insert("activity_types", rows)
        for type_id, name, entity, captures in rows:
            found[name] = (type_id, entity, captures)
        # (id, name, captures an owner) of the lead types to post
        self.activity_types = [(found[n][0], n, found[n][2]) for n in ACTIVITY_TYPES if found[n][1] == "lead"]
        self.report.counts["activity_types"] = len(rows)
        self.stage("activity types", len(rows), t)

    # -- records ---------------------------------------------------------------------------------
    def lead_created(self, index: int) -> int:
        """Leads arrive steadily over three years until two days ago: ids grow with time."""
        span = 3 * 365 * DAY
        return self.now - span + (index * (span - 2 * DAY)) // max(1, self.n_leads)

    def write_leads(self) -> None:
        t = time.perf_counter()
        n = self.n_leads
        pools = self.pools
        self.progress("leads", 0, n)
        self.defer_indexes("leads", n)
        self.lead0 = first_id = self.reserve("leads", n)
        self.owner = [self.sales_ids[p] for p in self.owner_pos]  # lead index -> owner id
        del self.owner_pos
        self.lead_first = self.rng("lead.first").choices(range(len(pools.first)), k=n)
        self.lead_last = self.rng("lead.last").choices(range(len(pools.last)), k=n)
        company_rng = self.rng("lead.company")
        email_rng = self.rng("lead.email")
        stage_rng = self.rng("lead.stage")
        source_rng = self.rng("lead.source")
        phone_rng = self.rng("lead.phone")
        fields_rng = self.rng("lead.fields")
        stages = [s for s, _ in _LEAD_STAGES]
        stage_cum = _cum([w for _, w in _LEAD_STAGES])
        sources = [s for s, _ in _LEAD_SOURCES]
        source_cum = _cum([w for _, w in _LEAD_SOURCES])
        phones = [f"+44 7700 900{i:03d}" for i in range(1000)]  # Ofcom's drama range: fictitious
        fields_pool = self.lead_fields()
        company_index = range(len(pools.companies))
        # Creation times from a pool of stamps along the three years, in id order.
        self.lead_stamps = [self.stamp(self.lead_created(i * n // 8192)) for i in range(8192)]
        stamps = self.lead_stamps
        fs, ls, cd, pd = pools.first_slug, pools.last_slug, pools.company_domains, _PERSONAL_DOMAINS
        fn, ln, cn = pools.first, pools.last, pools.companies
        for start in range(0, n, BATCH):
            end = min(n, start + BATCH)
            k = end - start
            firsts = self.lead_first[start:end]
            lasts = self.lead_last[start:end]
            companies = company_rng.choices(company_index, k=k)
            # email styles 0-3: a work address when there is a company; else a personal mailbox
            styles = [int(email_rng.random() * 10) for _ in range(k)]
            emails = [
                f"{fs[a]}.{ls[b]}@{cd[c]}" if s < 4 and cd[c] else f"{fs[a]}.{ls[b]}{s}@{pd[s % 5]}"
                for a, b, c, s in zip(firsts, lasts, companies, styles, strict=True)
            ]
            created = [stamps[(i * 8192) // n] for i in range(start, end)]
            rows = zip(
                range(first_id + start, first_id + end),
                [fn[a] + " " + ln[b] for a, b in zip(firsts, lasts, strict=True)],
                emails,
                phone_rng.choices(phones, k=k),
                [cn[c] for c in companies],
                stage_rng.choices(stages, cum_weights=stage_cum, k=k),
                source_rng.choices(sources, cum_weights=source_cum, k=k),
                self.owner[start:end],
                fields_rng.choices(fields_pool, k=k),
                created,
                created,
                strict=True,
            )
            self.insert("leads", list(rows))
            self.progress("leads", end, n)
        self.report.counts["leads"] = n
        self.stage("leads", n, t)

    def lead_fields(self) -> list[str]:
        """A pool of custom-field documents, encoded as the JSON field stores them."""
        rng = self.rng("lead.fields.pool")
        cum = _cum([o.weight for o in _OPP_TYPES])
        out = []
        for _ in range(4096):
            kind = rng.choices(_OPP_TYPES, cum_weights=cum)[0]
            doc = {
                "product_interest": kind.name,
                "requested_amount": rng.randrange(kind.low, kind.high + 1, kind.step),
                "city": rng.choice(self.pools.cities),
            }
            out.append(json.dumps(doc, sort_keys=True, ensure_ascii=False))
        return out

    def lead_name(self, index: int) -> str:
        return f"{self.pools.first[self.lead_first[index]]} {self.pools.last[self.lead_last[index]]}"

    def write_opportunities(self) -> None:
        """On random leads (sorted, so opportunity ids grow with their leads' age);
        most are owned by the lead's owner, some by a product specialist."""
        t = time.perf_counter()
        n = self.n_opps
        self.progress("opportunities", 0, n)
        self.defer_indexes("opportunities", n)
        self.opp0 = first_id = self.reserve("opportunities", n)
        rng = self.rng("opportunities")
        self.opp_lead = sorted(int(rng.random() * self.n_leads) for _ in range(n))
        active = self.active_sales or self.sales_ids
        r = rng.random
        self.opp_owner = [
            self.owner[li] if r() < 0.8 else active[int(r() * len(active))] for li in self.opp_lead
        ]
        kinds = rng.choices(_OPP_TYPES, cum_weights=_cum([o.weight for o in _OPP_TYPES]), k=n)
        stages = rng.choices([s for s, _ in _OPP_STAGES], cum_weights=_cum([w for _, w in _OPP_STAGES]), k=n)
        terms = [f'{{"term_years": {y}}}' for y in range(10, 36)]
        stamps, p = self.lead_stamps, len(self.lead_stamps)

        def rows():
            for i, (li, kind) in enumerate(zip(self.opp_lead, kinds, strict=True)):
                steps = (kind.high - kind.low) // kind.step + 1
                created = stamps[min(p - 1, li * p // self.n_leads + int(r() * 8))]
                yield (
                    first_id + i,
                    self.lead0 + li,
                    f"{self.lead_name(li)} - {kind.endings[int(r() * len(kind.endings))]}",
                    kind.name,
                    stages[i],
                    float(kind.low + kind.step * int(r() * steps)),
                    self.opp_owner[i],
                    terms[int(r() * len(terms))] if kind.name == "Home Loan" else "{}",
                    created,
                    created,
                )

        self.insert_batches("opportunities", "opportunities", rows(), n)
        self.report.counts["opportunities"] = n
        self.stage("opportunities", n, t)

    def write_activities(self) -> None:
        """Three activities per hundred leads. Those that capture an owner often
        belong to another sales user (a meeting with a colleague): some shares
        are made in their context."""
        t = time.perf_counter()
        types = self.activity_types
        n = (self.n_leads * 3) // 100 if types else 0
        self.defer_indexes("activities", n)
        first_id = self.reserve("activities", n)
        rng = self.rng("activities")
        r = rng.random
        picked = rng.choices(types, cum_weights=_cum([_ACTIVITY_WEIGHTS[name] for _, name, _ in types]), k=n)
        leads = sorted(int(r() * self.n_leads) for _ in range(n))
        active = self.active_sales
        active_set = set(active)
        # (activity id, lead index, owner, still open): owned by someone other than the lead's owner
        self.context_candidates: list[tuple[int, int, int, bool]] = []
        stamp, now = self.stamp, self.now

        def rows():
            for i, (li, (type_id, name, captures)) in enumerate(zip(leads, picked, strict=True)):
                lead_owner = self.owner[li]
                owner = None
                if captures:
                    owner = lead_owner
                    if active and r() < 0.6:
                        other = active[int(r() * len(active))]
                        owner = other if other != lead_owner else owner
                born = self.lead_created(li)
                if name == "Meeting Scheduled" and r() < 0.3:
                    occurred = now + 3600 + int(r() * 14 * DAY)  # booked for the coming days
                    created = max(born, now - int(r() * 7 * DAY))
                else:
                    occurred = born + int(r() * max(3600, now - born - 3600))
                    created = occurred
                done = occurred < now and r() < 0.6
                completed = stamp(min(now, occurred + 600 + int(r() * 3 * DAY))) if done else None
                fields = (
                    f'{{"amount": {10_000 + 1_000 * int(r() * 490)}}}' if name == "Loan Evaluation" else "{}"
                )
                notes = _NOTES.get(name, ("",))
                aid = first_id + i
                if owner is not None and owner != lead_owner and owner in active_set:
                    self.context_candidates.append((aid, li, owner, not done))
                yield (
                    aid,
                    type_id,
                    self.lead0 + li,
                    owner,
                    notes[int(r() * len(notes))],
                    fields,
                    "completed" if done else "open",
                    stamp(occurred),
                    stamp(created),
                    completed or stamp(created),
                    completed,
                )

        self.insert_batches("activities", "activities", rows(), n)
        self.report.counts["activities"] = n
        self.stage("activities", n, t)

    def write_tasks(self) -> None:
        """Tasks on opportunities (one per five) and on leads (one per two hundred);
        reminders already past were sent, so the worker owes nothing."""
        t = time.perf_counter()
        n_opp = self.n_opps // 5
        n_lead = self.n_leads // 200
        n = n_opp + n_lead
        self.defer_indexes("tasks", n)
        first_id = self.reserve("tasks", n)
        rng = self.rng("tasks")
        r = rng.random
        active = self.active_sales or self.sales_ids
        on_opps = sorted(int(r() * self.n_opps) for _ in range(n_opp))
        on_leads = sorted(int(r() * self.n_leads) for _ in range(n_lead))
        stamp, now = self.stamp, self.now

        def rows():
            for i in range(n):
                if i < n_opp:
                    oi = on_opps[i]
                    lead_id, opp_id, owner, subjects = None, self.opp0 + oi, self.opp_owner[oi], _OPP_TASKS
                else:
                    li = on_leads[i - n_opp]
                    lead_id, opp_id, owner, subjects = self.lead0 + li, None, self.owner[li], _LEAD_TASKS
                if r() < 0.3:
                    owner = active[int(r() * len(active))]
                due = now - 30 * DAY + int(r() * 60 * DAY)
                reminder = due - 3600 - int(r() * 2 * DAY) if r() < 0.7 else None
                created = min(now - 60, (reminder or due) - DAY - int(r() * 13 * DAY))
                completed = due - int(r() * DAY) if due < now and r() < 0.6 else None
                yield (
                    first_id + i,
                    lead_id,
                    opp_id,
                    owner,
                    subjects[int(r() * len(subjects))],
                    stamp(due),
                    stamp(reminder) if reminder is not None else None,
                    stamp(reminder) if reminder is not None and reminder <= now else None,
                    stamp(completed) if completed is not None else None,
                    stamp(created),
                    stamp(completed if completed is not None else created),
                )

        self.insert_batches("tasks", "tasks", rows(), n)
        self.report.counts["tasks"] = n
        self.stage("tasks", n, t)
