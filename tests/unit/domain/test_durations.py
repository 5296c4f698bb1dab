"""Share durations (DESIGN .3): units, words, combinations, bare minutes,
calendar months and years, bounds measured from a start, and errors a user
can act on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sharetui.domain.durations import parse_duration, parse_offset
from sharetui.errors import InvalidDuration, UsageError

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "length", "canonical"),
    [
        ("30m", timedelta(minutes=30), "30m"),
        ("2h", timedelta(hours=2), "2h"),
        ("3d", timedelta(days=3), "3d"),
        ("2w", timedelta(weeks=2), "2w"),
        ("1min", timedelta(minutes=1), "1m"),
        ("4hrs", timedelta(hours=4), "4h"),
    ],
)
def test_each_unit_gives_its_length(text: str, length: timedelta, canonical: str) -> None:
    duration = parse_duration(text)
    assert duration.end_from(START) - START == length
    assert duration.text == canonical


@pytest.mark.parametrize(
    ("text", "length", "canonical"),
    [
        ("3 days", timedelta(days=3), "3d"),
        ("1 day", timedelta(days=1), "1d"),
        ("2 hours", timedelta(hours=2), "2h"),
        ("45 minutes", timedelta(minutes=45), "45m"),
        ("1 week", timedelta(weeks=1), "1w"),
        ("3 Days", timedelta(days=3), "3d"),
        ("  2 weeks  ", timedelta(weeks=2), "2w"),
        ("1 day and 12 hours", timedelta(hours=36), "1d12h"),
        ("1 day, 12 hours", timedelta(hours=36), "1d12h"),
    ],
)
def test_words_read_like_a_person_writes_them(text: str, length: timedelta, canonical: str) -> None:
    duration = parse_duration(text)
    assert duration.end_from(START) - START == length
    assert duration.text == canonical


@pytest.mark.parametrize(
    ("text", "length", "canonical", "words"),
    [
        ("1d12h", timedelta(hours=36), "1d12h", "1 day 12 hours"),
        ("12h1d", timedelta(hours=36), "1d12h", "1 day 12 hours"),
        ("1w2d", timedelta(days=9), "1w2d", "1 week 2 days"),
        ("2h30m", timedelta(minutes=150), "2h30m", "2 hours 30 minutes"),
        ("1d 1d", timedelta(days=2), "2d", "2 days"),
    ],
)
def test_combinations_add_up_and_print_largest_first(
    text: str, length: timedelta, canonical: str, words: str
) -> None:
    duration = parse_duration(text)
    assert duration.end_from(START) - START == length
    assert duration.text == canonical
    assert duration.words == words


@pytest.mark.parametrize("value", ["90", " 90 ", 90])
def test_a_bare_number_means_minutes(value: str | int) -> None:
    """The batch API sends DurationInMinutes; "90" is not 90 days."""
    duration = parse_duration(value)
    assert duration.end_from(START) - START == timedelta(minutes=90)
    assert duration.minutes_from(START) == 90
    assert duration.text == "90m"


@pytest.mark.parametrize(
    ("start", "text", "end"),
    [
        # Jan 31 + 1 month is the end of February, in a common and a leap year.
        (datetime(2026, 1, 31, 9, 0, tzinfo=UTC), "1mo", datetime(2026, 2, 28, 9, 0, tzinfo=UTC)),
        (datetime(2028, 1, 31, 9, 0, tzinfo=UTC), "1mo", datetime(2028, 2, 29, 9, 0, tzinfo=UTC)),
        (datetime(2028, 1, 31, 9, 0, tzinfo=UTC), "1 month", datetime(2028, 2, 29, 9, 0, tzinfo=UTC)),
        # Feb 29 + 1 year lands on Feb 28; + 4 years on the next Feb 29.
        (datetime(2028, 2, 29, 9, 0, tzinfo=UTC), "1y", datetime(2029, 2, 28, 9, 0, tzinfo=UTC)),
        (datetime(2028, 2, 29, 9, 0, tzinfo=UTC), "4y", datetime(2032, 2, 29, 9, 0, tzinfo=UTC)),
        (datetime(2026, 8, 31, 9, 0, tzinfo=UTC), "6mo", datetime(2027, 2, 28, 9, 0, tzinfo=UTC)),
        (datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "1y6mo", datetime(2027, 9, 2, 9, 0, tzinfo=UTC)),
        (datetime(2026, 1, 31, 9, 0, tzinfo=UTC), "1mo1d", datetime(2026, 3, 1, 9, 0, tzinfo=UTC)),
    ],
)
def test_months_and_years_follow_the_calendar(start: datetime, text: str, end: datetime) -> None:
    assert parse_duration(text).end_from(start) == end


def test_a_month_is_as_long_as_the_calendar_says() -> None:
    month = parse_duration("1mo")
    assert month.minutes_from(datetime(2026, 2, 1, tzinfo=UTC)) == 28 * 24 * 60
    assert month.minutes_from(datetime(2028, 2, 1, tzinfo=UTC)) == 29 * 24 * 60
    assert month.minutes_from(datetime(2026, 3, 1, tzinfo=UTC)) == 31 * 24 * 60


@pytest.mark.parametrize("text", ["1m", "1 minute", "1", "5y", "60mo", "260w", "1826d"])
def test_durations_within_one_minute_to_five_years_are_accepted(text: str) -> None:
    parse_duration(text).check_bounds(START)  # no error


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0m", "too short"),
        ("0", "too short"),
        (0, "too short"),
        ("5y1m", "too long"),
        ("61mo", "too long"),
        ("6y", "too long"),
        ("1827d", "too long"),
    ],
)
def test_durations_out_of_range_are_refused_with_the_limit(value: str | int, words: str) -> None:
    duration = parse_duration(value)  # readable: bounds are checked separately
    with pytest.raises(InvalidDuration) as caught:
        duration.check_bounds(START)
    message = str(caught.value)
    assert words in message
    assert ("1 minute" if words == "too short" else "5 years") in message


def test_the_five_year_bound_is_measured_from_the_start() -> None:
    """1827 days is more than 5 years from March 2026 (one Feb 29 ahead) but
    exactly 5 years from March 2027 (two Feb 29s ahead)."""
    days = parse_duration("1827d")
    with pytest.raises(InvalidDuration, match="too long"):
        days.check_bounds(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    days.check_bounds(datetime(2027, 3, 2, 9, 0, tzinfo=UTC))
    # and "5y" is always allowed, however many leap days it spans
    parse_duration("5y").check_bounds(datetime(2028, 2, 29, 9, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("3 parsecs", "unknown unit 'parsecs'"),
        ("3s", "unknown unit 's'"),
        ("", "empty"),
        ("   ", "empty"),
        ("-5", "cannot read duration '-5'"),
        ("d3", "cannot read duration 'd3'"),
        ("1.5h", "cannot read duration '1.5h'"),
        ("3 days ago", "cannot read duration '3 days ago'"),
        ("soon", "cannot read duration 'soon'"),
        ("3d 5", "cannot read duration '3d 5'"),
        (-5, "negative"),
        (True, "not a duration"),
        (None, "not a duration"),
        (2.5, "not a duration"),
    ],
)
def test_junk_gets_a_clear_error(value: object, hint: str) -> None:
    with pytest.raises(InvalidDuration) as caught:
        parse_duration(value)  # type: ignore[arg-type]
    assert hint in str(caught.value)
    # A bad duration is bad usage (CLI exit 2), not a refused request.
    assert isinstance(caught.value, UsageError)
    assert caught.value.exit_code == 2


def test_unreadable_durations_suggest_forms_that_work() -> None:
    with pytest.raises(InvalidDuration) as caught:
        parse_duration("d3")
    for example in ("30m", "1d12h", "3 days"):
        assert example in str(caught.value)


@pytest.mark.parametrize("value", ["100000y", 10**12])
def test_an_absurdly_long_duration_is_too_long_not_a_crash(value: str | int) -> None:
    with pytest.raises(InvalidDuration, match="too long"):
        parse_duration(value).check_bounds(START)


def test_signed_offsets_move_back_and_forward() -> None:
    """Sample data dates records with offsets such as -3d and +1d12h."""
    assert START + parse_offset("-3d") == START - timedelta(days=3)
    assert START + parse_offset("+1d12h") == START + timedelta(hours=36)
    assert START + parse_offset("2h") == START + timedelta(hours=2)
