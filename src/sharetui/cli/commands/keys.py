"""``keys``: the HTTP API's keys (DESIGN §10). Each acts as its user."""

from __future__ import annotations

import click

from sharetui.cli.context import ID, AppContext, json_option, out, pass_app


@click.group()
def keys() -> None:
    """Keys of the HTTP API (sharetui serve): make, list, revoke."""


@keys.command("create")
@click.option("--user", metavar="USER", help="Whose key (admins; default: yourself).")
@click.option("--label", default="", help="A note saying what the key is for.")
@json_option
@pass_app
def keys_create(app: AppContext, user: str | None, label: str, as_json: bool) -> None:
    """Make a key. Its secret is shown now and never again: only a hash is kept."""
    from sharetui.cli.output import say

    key = app.core.keys.create(user, actor=app.actor, label=label)

    def human() -> None:
        say(f"key {key.id} for {key.user}")
        say(f"  accessKey  {key.access_key}")
        say(f"  secretKey  {key.secret_key}")
        say("The secret is shown only this once: store it now.", "yellow")

    out(as_json, key.as_dict(), human)


@keys.command("list")
@click.option("--user", metavar="USER", help="Only this user's keys (admins; others see their own).")
@json_option
@pass_app
def keys_list(app: AppContext, user: str | None, as_json: bool) -> None:
    """Keys you may see: admins every key, others their own. Secrets are never shown."""
    from sharetui.cli.output import table
    from sharetui.domain.time import local_text

    items = app.core.keys.list(actor=app.actor, user=user)

    out(
        as_json,
        {"items": [k.as_dict() for k in items]},
        lambda: table(
            "API keys",
            ["id", "user", "accessKey", "label", "state", "created", "last used"],
            [
                (
                    k.id,
                    k.user,
                    k.access_key,
                    k.label,
                    k.state,
                    local_text(k.created_at),
                    local_text(k.last_used_at),
                )
                for k in items
            ],
        ),
    )


@keys.command("revoke")
@click.argument("key_id", metavar="ID", type=ID)
@json_option
@pass_app
def keys_revoke(app: AppContext, key_id: int, as_json: bool) -> None:
    """Revoke a key: calls with it get 401 from the next request on."""
    from sharetui.cli.output import say

    info = app.core.keys.revoke(key_id, actor=app.actor)
    out(as_json, info.as_dict(), lambda: say(f"key {info.id} of {info.user} revoked"))
