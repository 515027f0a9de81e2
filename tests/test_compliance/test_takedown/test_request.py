from __future__ import annotations

import json
from pathlib import Path

import pytest

from compliance.takedown.request import TakedownRequestError, load_requests, make_request


def test_request_id_is_stable_and_content_derived() -> None:
    a = make_request(
        [("url", "HTTPS://Example.org:443/a#frag"), ("domain", "Spam.Example")],
        reason="gdpr",
        requester="dpo@example.org",
    )
    b = make_request(
        [("domain", "spam.example"), ("url", "https://example.org/a")], reason="gdpr", requester="dpo@example.org"
    )
    assert a.request_id == b.request_id
    assert [s.value for s in a.selectors] == ["spam.example", "https://example.org/a"]
    c = make_request([("domain", "spam.example")], reason="gdpr", requester="someone else")
    assert c.request_id != a.request_id


@pytest.mark.parametrize(
    ("selectors", "message"),
    [
        ([("url", "example.org/no-scheme")], "absolute http.s. URL"),
        ([("url", "file:///etc/passwd")], "absolute http.s. URL"),
        ([("domain", "https://example.org/")], "bare host name"),
        ([("domain", "../../etc")], "bare host name"),
        ([("domain", "exa_mple..org")], "not a valid domain"),
        ([("content_hash", "abc")], "64 hex"),
        ([("doc_id", "../../../etc/passwd")], "not a document id"),
        ([("pii", "a@")], "fewer than 4"),
        ([("bogus", "x")], "unknown selector"),
        ([], "no selector"),
        ([("url", "https://e.org/\x00")], "control characters"),
    ],
)
def test_malformed_selectors_are_refused(selectors: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(TakedownRequestError, match=message):
        make_request(selectors, reason="r", requester="q")


def test_reason_and_requester_are_required() -> None:
    with pytest.raises(TakedownRequestError, match="reason"):
        make_request([("domain", "example.org")], reason="", requester="q")
    with pytest.raises(TakedownRequestError, match="requester"):
        make_request([("domain", "example.org")], reason="r", requester=None)


def test_request_files_json_and_csv(tmp_path: Path) -> None:
    j = tmp_path / "reqs.json"
    j.write_text(
        json.dumps(
            [
                {"domain": "a.example", "reason": "opt-out", "requester": "a"},
                {
                    "selectors": [{"kind": "url", "value": "https://b.example/x"}],
                    "reason": "gdpr",
                    "requester": "b",
                    "ticket": "T-1",
                },
            ]
        )
    )
    reqs = load_requests(j)
    assert [r.ticket for r in reqs] == ["", "T-1"]
    c = tmp_path / "reqs.csv"
    c.write_text(
        "kind,value,reason,requester,ticket\ndomain,c.example,dmca,c,T-2\nurl,https://c.example/p,dmca,c,T-2\n"
    )
    (req,) = load_requests(c)
    assert len(req.selectors) == 2 and req.ticket == "T-2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('[{"domain": "a.example", "reason": "r"}]', "requester"),
        ('[{"domain": "a.example", "reason": "r", "requester": "q", "surprise": 1}]', "unknown field"),
        ('["just a string"]', "not a JSON object"),
        ("[]", "no requests"),
        ("[" * 100_000, "nested too deeply"),  # was a RecursionError traceback from the CLI
    ],
)
def test_bad_request_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "r.json"
    p.write_text(content)
    with pytest.raises(TakedownRequestError, match=message):
        load_requests(p)
