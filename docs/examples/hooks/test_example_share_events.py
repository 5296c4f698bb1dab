import example_share_events as plugin

from sharetui.testing import advance, company, plugin_registered, temporary_core


def test_every_lifecycle_event_is_heard_after_commit(tmp_path):
    plugin.LOG.clear()
    with temporary_core(tmp_path) as core:
        people = company(core)
        lead = people.lead.id
        with plugin_registered(core, plugin):
            core.sharing.share("lead", lead, "daniel", requester=people.priya, duration="2d")  # granted
            core.sharing.share("lead", lead, "daniel", requester=people.priya, duration="2d")  # renewed
            core.sharing.share("lead", lead, "sofia", requester=people.priya, duration="1d")
            core.sharing.share("lead", lead, "nobody", requester=people.priya)  # request_failed
            core.sharing.revoke("lead", lead, "daniel", requester=people.priya)  # revoked
            advance(core, "12h")
            core.expiry.sweep()  # sofia's share expires within 24 h: expiring_soon
            advance(core, "1d")
            core.expiry.sweep()  # ... and now it has: expired
    kinds = [(kind, user) for kind, _record, user, _reason in plugin.LOG]
    assert kinds == [
        ("granted", "daniel"),
        ("renewed", "daniel"),
        ("granted", "sofia"),
        ("request_failed", "nobody"),
        ("revoked", "daniel"),
        ("expiring_soon", "sofia"),
        ("expired", "sofia"),
    ]
