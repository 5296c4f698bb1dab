from sharetui.testing import advance, as_user, company, temporary_core


def test_the_company_and_the_clock(tmp_path):
    with temporary_core(tmp_path, now="2026-03-02T09:00:00Z") as core:
        people = company(core)
        assert [people.priya.username, people.daniel.username, people.wei.username] == [
            "priya",
            "daniel",
            "wei",
        ]
        assert core.records.get(people.closed_lead).stage == "Closed"
        share = as_user(core, "priya").shares.share(people.lead, "daniel", duration="2d")
        assert share.ok and core.access.can("daniel", people.lead, "read")
        advance(core, "2d")  # the frozen clock moves only when told
        assert not core.access.can("daniel", people.lead, "read")  # expired, swept or not
