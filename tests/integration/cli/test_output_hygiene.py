"""What the command line prints from data (DESIGN §9, last bullet): terminal control
sequences are shown, never executed; ``--json`` stays exact; CSV cells a spreadsheet
would run as formulas are neutralised.

A lead named ``Mira\\x1b]0;pwned\\x07 \\x1b[8mhidden`` retitled the terminal window and
concealed what followed when ``leads list`` or ``leads show`` printed it. The test
runner's stdout is no terminal, so Rich writes no colour codes: any ESC in the output
could only come from the data.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Bank, CliResult

# OSC 0 (set the window title), CSI 8m (conceal), C1 CSI (clear the screen), a right-to-left
# override, and markup Rich would apply if it ever read data as markup.
ATTACK = "Mira\x1b]0;pwned\x07 \x1b[8mhidden\x1b[0m \x9b2J \u202eevil [bold red]loud[/]"
SHOWN = "Mira\\x1b]0;pwned\\x07 \\x1b[8mhidden\\x1b[0m \\x9b2J \\u202eevil [bold red]loud[/]"
EXECUTABLE = ("\x1b", "\x07", "\x9b", "\u202e")


def clean(result: CliResult) -> str:
    """stdout + stderr, asserted free of everything a terminal would act on."""
    text = result.stdout + result.stderr
    assert not [c for c in EXECUTABLE if c in text], repr(text[:500])
    return text


@pytest.fixture
def attack_lead(bank: Bank) -> int:
    """A lead whose name and custom field (key and value) carry the attack
    (written through the core before any command runs: the CLI rebinds the database)."""
    core = bank.core
    lead = core.records.add_lead(
        name=ATTACK, owner=bank.priya, actor=bank.admin, fields={"note\x1b[31m": "multi\nline\x1b[2J"}
    )
    return lead.id


def test_say_shows_escapes(bank: Bank, cli) -> None:
    added = cli("leads", "add", "--name", ATTACK, "--owner", "priya", user="admin")
    assert added.exit_code == 0, added.stderr
    assert f"added lead 2: {SHOWN}" in clean(added)


def test_tables_show_escapes_in_place_of_control_sequences(cli, attack_lead: int) -> None:
    listed = clean(cli("leads", "list", user="admin"))
    assert SHOWN in listed


def test_leads_show_escapes_the_title_fields_and_notes(cli, attack_lead: int) -> None:
    shown = clean(cli("leads", "show", str(attack_lead), user="admin"))
    assert f"lead {attack_lead}: {SHOWN}" in shown  # the title: data, never markup
    assert "fields.note\\x1b[31m" in shown
    # A line break in a value stays a line break inside its cell (the rest goes on below).
    lines = shown.splitlines()
    at = next(i for i, ln in enumerate(lines) if "fields.note" in ln)
    assert "multi" in lines[at] and "line\\x1b[2J" in lines[at + 1]


def test_json_output_is_exact_and_escapes_what_a_terminal_acts_on(cli, attack_lead: int) -> None:
    result = cli("leads", "show", str(attack_lead), "--json", user="admin")
    clean(result)
    data = result.json()
    assert data["name"] == ATTACK  # the same text, byte for byte, once decoded
    assert data["fields"] == {"note\x1b[31m": "multi\nline\x1b[2J"}
    assert "\\u001b]0;pwned\\u0007" in result.stdout and "\\u009b2J \\u202eevil" in result.stdout


def test_error_lines_show_escapes(cli, attack_lead: int) -> None:
    """The one error line echoes input (here a file name) with its escapes shown."""
    result = cli("api", "share", "no\x1b]0;x\x07where.json", user="admin")
    assert result.exit_code == 2
    assert "cannot read no\\x1b]0;x\\x07where.json" in clean(result)


def test_history_csv_neutralises_cells_a_spreadsheet_would_run(bank: Bank, cli) -> None:
    """`history --csv` (the CLI's export): a recipient typed as a formula is kept in the
    failed request's history; in the CSV it starts with ``'`` and is shown, never run."""
    formulas = ['=HYPERLINK("http://evil.test","click")', "+1+1", "-2+3", "@SUM(A1:A2)", "=cmd|' /C calc'!A0"]
    for typed in formulas:
        assert cli("share", "lead", "1", "--with", typed, user="admin").exit_code == 1
    result = cli("history", "lead", "1", "--csv", user="admin")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    users = [r["user"] for r in rows if r["status"] == "failed"]
    assert users == ["'" + f for f in formulas]
    starts = ("=", "+", "-", "@", "\t", "\r")
    assert not [cell for row in rows for cell in row.values() if cell and cell.startswith(starts)]
    # --json is data, not a spreadsheet: exact.
    history = json.loads(cli("history", "lead", "1", "--json", user="admin").stdout)["items"]
    assert [h["user"] for h in history if h["status"] == "failed"] == formulas


def test_a_csv_export_on_a_terminal_shows_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    """To a file or a pipe the CSV is the data as it is; on a terminal its control
    characters are shown as escapes, like every other output."""
    from sharetui.cli import output

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    csv.writer(output.data_stream(), lineterminator="\r\n").writerow(["x\x1b]0;t\x07", "ok"])
    assert screen.getvalue() == "x\\x1b]0;t\\x07,ok\n"  # a CRLF line end is one line break
    piped = io.StringIO()
    monkeypatch.setattr("sys.stdout", piped)
    assert output.data_stream() is piped


def test_history_csv_shows_terminal_control_characters_instead_of_sending_them(bank: Bank, cli) -> None:
    """Found by the HTTP API's attacker: a recipient typed with an OSC title sequence and a
    right-to-left override was kept in a failed request's history, and `history --csv`
    (which prints to the terminal by default) sent it raw."""
    typed = "\x1b]0;pwned\x07\x1b[31mEVIL\u202e"
    assert cli("share", "lead", "1", "--with", typed, user="admin").exit_code == 1
    result = cli("history", "lead", "1", "--csv", user="admin")
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b]0;pwned\\x07\\x1b[31mEVIL\\u202e" in result.stdout
