"""robots.txt-style path patterns shared by TDMRep, Content-Usage and ai.txt."""

from __future__ import annotations

import pytest

from crawler.pathmatch import PathPattern, normalise, url_path


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/", "/anything", True),
        ("/a/", "/a/b", True),
        ("/a/", "/b/a/", False),
        ("/fish*.php", "/fishheads/catfish.php?x", True),
        ("/*.php$", "/x.php", True),
        ("/*.php$", "/x.php?y", False),
        ("*.jpg", "/img/a.jpg", True),
        ("/this/*/then", "/this/is/then/more", True),
        ("/path/foo-%24", "/path/foo-$", True),
        ("/ツ", "/%E3%83%84", True),
        ("/%62az", "/baz", True),
        ("", "/x", True),
        ("/A", "/a", False),
    ],
)
def test_matches(pattern: str, path: str, expected: bool) -> None:
    assert PathPattern(pattern).matches(normalise(path)) is expected


def test_url_path_keeps_query_and_drops_fragment() -> None:
    assert url_path("http://x") == "/"
    assert url_path("http://x/a?b=1#frag") == "/a?b=1"
    assert url_path("http://x/a?") == "/a?"


def test_specificity_counts_octets() -> None:
    assert PathPattern("/ai-ok/").specificity == 7
    assert PathPattern("/ツ").specificity == len("/%E3%83%84")


def test_many_wildcards_do_not_backtrack() -> None:
    import time

    pattern = PathPattern("/" + "*a" * 40 + "*b")
    t0 = time.perf_counter()
    assert not pattern.matches("/" + "a" * 100_000)
    assert time.perf_counter() - t0 < 5.0  # exponential before; a guard, not a benchmark
    assert PathPattern("/*a*b$").matches("/xaxb") and not PathPattern("/*a*b$").matches("/xaxbc")
