"""``sharetui keys``: the secret is shown once, lists never carry it, and who may
touch whose keys follows DESIGN §9/§10 (admins anyone's, others their own)."""

from __future__ import annotations


def test_keys_create_list_revoke(cli, bank) -> None:
    made = cli("keys", "create", "--label", "loan script", "--json", user="daniel")
    assert made.exit_code == 0, made.stderr
    key = made.json()
    assert key["user"] == "daniel" and key["secret_key"].startswith("sk_")
    human = cli("keys", "create", user="daniel")
    assert "secretKey" in human.stdout and "only this once" in human.stdout

    listed = cli("keys", "list", "--json", user="daniel")
    assert listed.exit_code == 0, listed.stderr
    assert listed.json()["items"][0]["id"] == key["id"]
    assert key["secret_key"] not in listed.stdout and "scrypt" not in listed.stdout
    assert cli("keys", "list", user="daniel").exit_code == 0

    # Sofia may neither see nor revoke daniel's keys; it answers like a missing key.
    assert cli("keys", "list", "--json", user="sofia").json() == {"items": []}
    theirs = cli("keys", "revoke", str(key["id"]), user="sofia")
    assert theirs.exit_code == 1 and f"no key {key['id']} you may revoke" in theirs.stderr
    assert cli("keys", "create", "--user", "daniel", user="sofia").exit_code == 1

    revoked = cli("keys", "revoke", str(key["id"]), "--json", user="daniel")
    assert revoked.exit_code == 0 and revoked.json()["state"] == "revoked"
    again = cli("keys", "revoke", str(key["id"]), user="daniel")
    assert again.exit_code == 1 and "already revoked" in again.stderr

    # Admins make and list anyone's keys.
    for_sofia = cli("keys", "create", "--user", "sofia", "--json", user="admin")
    assert for_sofia.exit_code == 0 and for_sofia.json()["user"] == "sofia"
    everyone = {k["user"] for k in cli("keys", "list", "--json", user="admin").json()["items"]}
    assert everyone == {"daniel", "sofia"}
    assert cli("keys", "create", "--user", "ghost", user="admin").exit_code == 2
