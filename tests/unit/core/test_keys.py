"""Keys of the HTTP API (DESIGN §10): made for whom the rules allow, kept only as a
scrypt hash, checked in constant time, and dead the moment they are revoked or
their user is deactivated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sharetui.core.access import keys as keymod
from sharetui.db.models import ApiKey
from sharetui.errors import NotReadable, PermissionDenied, Refused, UsageError


def test_a_key_acts_as_its_user_and_only_a_hash_is_kept(bank) -> None:
    core = bank.core
    new = core.keys.create(actor=bank.priya, label="loan script")
    assert new.user == "priya" and new.secret_key.startswith("sk_")
    row = ApiKey.get_by_id(new.id)
    assert new.secret_key not in row.secret_hash and row.secret_hash.startswith("scrypt$16384$8$1$")
    caller = core.keys.authenticate(new.access_key, new.secret_key)
    assert caller is not None and caller.user.username == "priya" and caller.key_id == new.id
    assert row.last_used_at is None and ApiKey.get_by_id(new.id).last_used_at == core.db_now()
    # Listing never carries the secret or its hash.
    [listed] = core.keys.list(actor=bank.priya)
    assert new.secret_key not in str(listed.as_dict()) and "scrypt" not in str(listed.as_dict())


def test_two_keys_of_one_secret_hash_differently() -> None:
    """A salt per key: equal secrets do not give equal hashes."""
    assert keymod.hash_secret("same") != keymod.hash_secret("same")
    assert keymod.verify_secret("same", keymod.hash_secret("same"))
    assert not keymod.verify_secret("other", keymod.hash_secret("same"))
    assert not keymod.verify_secret("same", "md5$abc")  # unreadable stored values verify nothing


@pytest.mark.parametrize(
    ("access", "secret"),
    [
        ("ak_unknown", "sk_whatever"),
        (None, None),
        ("", ""),
        ("x" * 10_000, "y"),
        ("ak\x00", "s"),
    ],
)
def test_wrong_keys_are_refused_alike(bank, access, secret) -> None:
    new = bank.core.keys.create(actor=bank.priya)
    assert bank.core.keys.authenticate(access, secret) is None
    assert bank.core.keys.authenticate(new.access_key, secret) is None
    assert bank.core.keys.authenticate(new.access_key, new.secret_key + "x") is None


def test_a_wrong_secret_pays_the_full_kdf_even_for_a_remembered_key(bank, monkeypatch) -> None:
    """Timing must not tell which accessKeys exist: only the right secret is fast."""
    core = bank.core
    new = core.keys.create(actor=bank.priya)
    assert core.keys.authenticate(new.access_key, new.secret_key) is not None
    calls = []
    real = keymod.verify_secret
    monkeypatch.setattr(keymod, "verify_secret", lambda s, h: calls.append(h) or real(s, h))
    assert core.keys.authenticate(new.access_key, new.secret_key) is not None  # remembered: no KDF
    assert calls == []
    assert core.keys.authenticate(new.access_key, "sk_wrong") is None
    assert core.keys.authenticate("ak_nobody", "sk_wrong") is None
    assert len(calls) == 2


def test_revoked_keys_and_deactivated_users_stop_at_once(bank) -> None:
    core = bank.core
    mine = core.keys.create(actor=bank.daniel)
    other = core.keys.create(actor=bank.daniel)
    assert core.keys.authenticate(mine.access_key, mine.secret_key) is not None
    core.keys.revoke(mine.id, actor=bank.daniel)
    assert core.keys.authenticate(mine.access_key, mine.secret_key) is None
    with pytest.raises(Refused, match="already revoked"):
        core.keys.revoke(mine.id, actor=bank.daniel)
    assert core.keys.authenticate(other.access_key, other.secret_key) is not None
    core.users.deactivate("daniel", actor=bank.admin)
    assert core.keys.authenticate(other.access_key, other.secret_key) is None


def test_who_may_make_list_and_revoke_whose_keys(bank) -> None:
    core = bank.core
    for_daniel = core.keys.create("daniel", actor=bank.admin)  # admins: anyone
    assert for_daniel.user == "daniel"
    with pytest.raises(PermissionDenied, match="themselves only"):
        core.keys.create("daniel", actor=bank.manager)
    with pytest.raises(PermissionDenied, match="themselves only"):
        core.keys.create("sofia", actor=bank.daniel)
    sofias = core.keys.create(actor=bank.sofia)
    assert {k.user for k in core.keys.list(actor=bank.admin)} == {"daniel", "sofia"}
    assert [k.id for k in core.keys.list(actor=bank.daniel)] == [for_daniel.id]
    with pytest.raises(PermissionDenied):
        core.keys.list(actor=bank.daniel, user="sofia")
    # Another's key answers like a missing one.
    with pytest.raises(NotReadable, match=f"no key {sofias.id} you may revoke"):
        core.keys.revoke(sofias.id, actor=bank.daniel)
    with pytest.raises(NotReadable, match="no key 999 you may revoke"):
        core.keys.revoke(999, actor=bank.daniel)
    core.keys.revoke(sofias.id, actor=bank.admin)
    core.users.deactivate("kenji", actor=bank.admin)
    with pytest.raises(UsageError, match="deactivated"):
        core.keys.create("kenji", actor=bank.admin)


def test_last_used_is_written_at_most_once_a_minute(bank, clock) -> None:
    core = bank.core
    new = core.keys.create(actor=bank.priya)
    core.keys.authenticate(new.access_key, new.secret_key)
    first = ApiKey.get_by_id(new.id).last_used_at
    clock.advance(timedelta(seconds=30))
    core.keys.authenticate(new.access_key, new.secret_key)
    assert ApiKey.get_by_id(new.id).last_used_at == first
    clock.advance(timedelta(seconds=31))
    core.keys.authenticate(new.access_key, new.secret_key)
    assert ApiKey.get_by_id(new.id).last_used_at == core.db_now()


def test_deactivating_a_user_revokes_their_keys_for_good(bank) -> None:
    """HTTP API attack H9: a key survived its user's deactivation, and reactivating the
    user brought it back. Deactivation revokes every key of the user in its own
    transaction, naming the admin who did it; reactivation brings none back."""
    core = bank.core
    first, second = core.keys.create(actor=bank.daniel), core.keys.create(actor=bank.daniel)
    core.keys.revoke(first.id, actor=bank.daniel)
    theirs = core.keys.create(actor=bank.priya)
    core.users.deactivate("daniel", actor=bank.admin)
    core.users.activate("daniel", actor=bank.admin)
    assert core.keys.authenticate(second.access_key, second.secret_key) is None
    row = ApiKey.get_by_id(second.id)
    assert row.revoked_at == core.db_now() and row.revoked_by_id == bank.admin.id
    assert ApiKey.get_by_id(first.id).revoked_by_id == bank.daniel.id  # revoked before: left as it was
    assert core.keys.authenticate(theirs.access_key, theirs.secret_key) is not None
    assert [k.state for k in core.keys.list(actor=bank.admin, user="daniel")] == ["revoked", "revoked"]


def test_scrypt_checks_are_bounded_and_a_remembered_key_needs_none(bank, monkeypatch) -> None:
    """HTTP API attack H4: every 401 pays a full scrypt on the threads that serve valid
    keys. Now at most KDF_SLOTS scrypt checks run at once (the rest queue), and a
    remembered key is answered by ``remembered`` without any, while they wait."""
    import threading

    core = bank.core
    good = core.keys.create(actor=bank.priya)
    assert core.keys.authenticate(good.access_key, good.secret_key) is not None  # now remembered
    inside, most, release = [0], [0], threading.Event()
    lock = threading.Lock()
    real = keymod.verify_secret

    def slow_verify(secret: str, stored: str) -> bool:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        release.wait(30)
        with lock:
            inside[0] -= 1
        return real(secret, stored)

    monkeypatch.setattr(keymod, "verify_secret", slow_verify)
    bad = [
        threading.Thread(target=core.keys.authenticate, args=(f"ak_{i}", "sk_wrong"))
        for i in range(keymod.KDF_SLOTS + 3)
    ]
    for thread in bad:
        thread.start()
    for _ in range(300):  # until the slots are full (the others queue behind them)
        if inside[0] == keymod.KDF_SLOTS:
            break
        release.wait(0.01)
    assert inside[0] == keymod.KDF_SLOTS
    caller = core.keys.remembered(good.access_key, good.secret_key)  # no slot needed
    assert caller is not None and caller.user.username == "priya"
    assert core.keys.remembered(good.access_key, "sk_wrong") is None  # only the right secret
    assert core.keys.remembered("ak_nobody", good.secret_key) is None
    release.set()
    for thread in bad:
        thread.join(30)
    assert most[0] == keymod.KDF_SLOTS
