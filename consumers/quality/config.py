"""Configuration of the quality filters.

Defaults are datatrove 0.10.1's, as used for FineWeb (see ``docs/quality.md`` for each source). As in
datatrove, a threshold of 0 switches its rule off where datatrove tests it for truthiness, and -1 does
so for the C4 counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consumers.quality.punctuation import TERMINAL_PUNCTUATION

GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
C4_POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


@dataclass(frozen=True)
class GopherRepetitionConfig:
    """Gopher (Rae et al. 2021, table A1) repetition rules; datatrove ``GopherRepetitionFilter``."""

    enabled: bool = True
    dup_line_frac: float = 0.3
    dup_para_frac: float = 0.3
    dup_line_char_frac: float = 0.2
    dup_para_char_frac: float = 0.2
    top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    dup_n_grams: tuple[tuple[int, float], ...] = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))


@dataclass(frozen=True)
class GopherQualityConfig:
    """Gopher quality rules; datatrove ``GopherQualityFilter``."""

    enabled: bool = True
    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_avg_word_length: float = 3
    max_avg_word_length: float = 10
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    max_non_alpha_words_ratio: float = 0.8  # despite the name: at least this share of words has a letter
    min_stop_words: int = 2
    stop_words: tuple[str, ...] = GOPHER_STOP_WORDS


@dataclass(frozen=True)
class C4Config:
    """C4 rules; datatrove ``C4QualityFilter`` with FineWeb's ``filter_no_terminal_punct=False``."""

    enabled: bool = True
    split_paragraph: bool = True
    remove_citations: bool = True
    filter_no_terminal_punct: bool = False  # FineWeb; C4 itself used True
    min_num_sentences: int = 5
    min_words_per_line: int = 3
    max_word_length: int = 1000
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True
    policy_substrings: tuple[str, ...] = C4_POLICY_SUBSTRINGS


@dataclass(frozen=True)
class FineWebConfig:
    """FineWeb's own rules; datatrove ``FineWebQualityFilter``."""

    enabled: bool = True
    line_punct_thr: float = 0.12
    line_punct_exclude_zero: bool = False
    stop_chars: tuple[str, ...] = tuple(sorted(TERMINAL_PUNCTUATION))
    short_line_thr: float = 0.67
    short_line_length: int = 30
    char_duplicates_ratio: float = 0.01
    new_line_ratio: float = 0.3


@dataclass(frozen=True)
class HygieneConfig:
    """Rules for what poisons training batches beyond the datatrove rules (0 switches a rule off).

    Their drops are counted under the ``hygiene`` stage, separately from the datatrove-equivalent ones.
    """

    enabled: bool = True
    # leftover markup: HTML tags, entities, comment markers, template braces
    max_markup_fraction: float = 0.02  # share of characters inside markup
    min_markup_chars: int = 40  # ...and at least this many characters of it
    # base64 / hex blobs
    min_blob_length: int = 64  # a run of base64 or hex characters at least this long is a blob
    max_blob_fraction: float = 0.1  # share of characters inside blobs
    # control and replacement characters (mojibake, binary junk)
    max_control_fraction: float = 0.01
    # boilerplate: lines that are navigation, cookie, sharing or copyright chrome
    max_boilerplate_line_fraction: float = 0.5
    min_boilerplate_lines: int = 5


@dataclass(frozen=True)
class QualityConfig:
    """The quality stage group. ``max_doc_chars`` guards the rules against pathological documents
    (a longer document is dropped as ``doc_too_long`` before any rule runs; datatrove's Gopher length
    and word-length rules drop such documents anyway)."""

    enabled: bool = True
    annotate: bool = True  # keep the measured values of kept documents in ``Document.annotations``
    max_doc_chars: int = 2_000_000
    word_cache_chunks: int = 400_000
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    c4: C4Config = field(default_factory=C4Config)
    fineweb: FineWebConfig = field(default_factory=FineWebConfig)
    hygiene: HygieneConfig = field(default_factory=HygieneConfig)
