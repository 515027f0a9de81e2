"""Structured Field Dictionary parsing (RFC 9651 §4.2.2) as the Content-Usage reader needs it."""

from __future__ import annotations

import pytest

from crawler.sfv import SFVError, Token, parse_dictionary


def test_tokens_strings_and_booleans() -> None:
    d = parse_dictionary('train-ai=n, search="n", a, b=?0, c=?1')
    assert d == {"train-ai": "n", "search": "n", "a": True, "b": False, "c": True}
    assert isinstance(d["train-ai"], Token) and not isinstance(d["search"], Token)


def test_numbers_bytes_dates_inner_lists_and_parameters() -> None:
    d = parse_dictionary('i=-12, f=1.5, b=:aGk=:, dt=@1700000000, l=(a "b" 3);p=1, x=y;q;r="s"')
    assert d["i"] == -12 and d["f"] == 1.5 and d["b"] == b"hi" and d["dt"] == 1700000000
    assert d["l"] == ["a", "b", 3] and d["x"] == "y"


def test_last_duplicate_wins_and_whitespace() -> None:
    assert parse_dictionary("  a=1 ,\tb=2,a=3 ") == {"b": 2, "a": 3}
    assert parse_dictionary("") == {}


@pytest.mark.parametrize(
    "bad",
    ["A=1", "a=1,", "a=1 b=2", 'a="unterminated', "a=:!!:", "a=?2", "a=1.", "a=(1", "1a=2", 'a="\\x"', "a=é"],
)
def test_invalid(bad: str) -> None:
    with pytest.raises(SFVError):
        parse_dictionary(bad)
