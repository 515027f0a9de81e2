"""presidio's pattern recognizers, offline, plus an exact shortcut for the phone recognizer.

* E-mail: presidio's ``EmailRecognizer`` checks the domain with ``tldextract``, which by default
  downloads the public-suffix list; here it reads the snapshot bundled with tldextract.
* Phone: presidio's ``PhoneRecognizer`` runs phonenumbers' ``PhoneNumberMatcher`` once per region,
  and phonenumbers parses every digit run it finds (this is ~90% of presidio's time on web text).
  :class:`GatedMatcher` returns exactly what phonenumbers returns, faster:

  - the candidate scan (a regex search per candidate) does not depend on the region, so it is done
    once per text and shared by the regions;
  - a candidate with fewer digits than the shortest valid number of the region (from phonenumbers'
    own metadata; see :func:`phone_digit_floors`) cannot verify and is skipped, with its inner parts;
  - the neighbour-character test runs before parsing (phonenumbers does it first too), and the rest
    of the verdict depends only on (region, leniency, candidate), so it is memoised;
  - a candidate written nationally (no plus sign, no international prefix) can only be valid if
    one of the few national numbers phonenumbers could derive from its digits matches the region's
    general pattern (:class:`NationalPrecheck`); that takes a few regexes instead of a parse.

  One difference: phonenumbers stops a text after 65,535 failed candidates; skipped candidates do
  not count here (the detector has its own, smaller, per-document budget).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from typing import Any

EMAIL = "EMAIL_ADDRESS"
PHONE = "PHONE_NUMBER"
IP = "IP_ADDRESS"
CARD = "CREDIT_CARD"
IBAN = "IBAN_CODE"
CRYPTO = "CRYPTO"
SSN = "US_SSN"
ENTITIES = (EMAIL, PHONE, IP, CARD, IBAN, CRYPTO, SSN)
#: presidio PhoneRecognizer's default regions
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")

_DIGIT = re.compile(r"\d")
_ASCII_NON_DIGITS = re.compile(r"[^0-9]")
_PLUS = ("+", "\uff0b")
_LEAD = re.compile("[(\\[\uff08\uff3b+\uff0b]")  # phonenumbers' opening brackets and plus signs


def offline_tld_extractor() -> Any:
    import tldextract

    # The public-suffix snapshot bundled with tldextract: no network, no cache directory.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def phone_digit_floors(regions: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per default region: the fewest digits of a valid number written without / with a plus sign.

    With a plus the number is international: at least the shortest country code plus national length
    of any region. Without one it is national (the shortest national length of any region sharing the
    country code) or dialled through an international prefix (at least one digit more than the
    international minimum). All lengths come from phonenumbers' metadata.
    """
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata
    from phonenumbers.phonenumberutil import SUPPORTED_REGIONS, country_code_for_region

    def shortest(region: str) -> int:
        md = PhoneMetadata.metadata_for_region(region)
        desc = md.general_desc if md else None
        lengths = [n for n in desc.possible_length if n > 0] if desc else []
        return min(lengths) if lengths else 1

    international = min(len(str(country_code_for_region(r))) + shortest(r) for r in SUPPORTED_REGIONS)
    out = {}
    for region in regions:
        if region not in SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {region!r}")
        cc = country_code_for_region(region)
        national = min(shortest(r) for r in COUNTRY_CODE_TO_REGION_CODE.get(cc, (region,)) if r in SUPPORTED_REGIONS)
        out[region] = (min(national, international + 1), international)
    return out


class PhoneState:
    """Shared by the phone matchers of one detector: the verdict memo and an attempt hook."""

    def __init__(self, memo_size: int = 200_000) -> None:
        self.memo: dict[tuple[str, int, str], Any] = {}
        self.matches: dict[tuple[str, int, str, bool, bool, bool], Any] = {}
        self.memo_size = memo_size
        self.on_attempt: Callable[[], None] | None = None


def phone_characters() -> re.Pattern[str]:
    """A regex for maximal runs of the characters phonenumbers' candidate pattern can match.

    Computed from that pattern itself (its literals, ranges and ``\\d``, under its own flags, which
    include IGNORECASE): a candidate never contains any other character, so a phone number always
    lies inside one such run.
    """
    import re._constants as sre_constants
    import re._parser as sre_parse

    from phonenumbers.phonenumbermatcher import _PATTERN

    literals: set[int] = set()
    ranges: list[tuple[int, int]] = []
    digits = False

    def walk(sub: Any) -> None:
        nonlocal digits
        for op, av in sub:
            if op is sre_constants.LITERAL:
                literals.add(av)
            elif op is sre_constants.IN:
                for o, a in av:
                    if o is sre_constants.LITERAL:
                        literals.add(a)
                    elif o is sre_constants.RANGE:
                        ranges.append(a)
                    elif o is sre_constants.CATEGORY and a is sre_constants.CATEGORY_DIGIT:
                        digits = True
                    else:
                        raise ValueError(f"unexpected class item {o} in phonenumbers' pattern")
            elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                walk(av[2])
            elif op is sre_constants.SUBPATTERN:
                walk(av[-1])
            elif op is sre_constants.BRANCH:
                for branch in av[1]:
                    walk(branch)
            elif op is sre_constants.CATEGORY and av is sre_constants.CATEGORY_DIGIT:
                digits = True
            else:
                raise ValueError(f"unexpected construct {op} in phonenumbers' pattern")

    walk(sre_parse.parse(_PATTERN.pattern, _PATTERN.flags))
    members = "".join(re.escape(chr(c)) for c in sorted(literals))
    members += "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    members += "\\d" if digits else ""
    one = re.compile(f"[{members}]", _PATTERN.flags)
    chars = set(one.findall("".join(map(chr, range(0x110000)))))  # case variants included
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]+")


class NationalPrecheck:
    """Whether a candidate written nationally can be a valid number of the region at all.

    phonenumbers obtains the national significant number of such a candidate from its digits by
    stripping, at most, the region's country code and (twice, via ``_maybe_strip_national_prefix_
    carrier_code``, which is called here too) its national prefix; validity then requires that number
    to match the general pattern and a possible length of some region sharing the country code. So
    if none of the few numbers those strips can produce matches, parsing cannot succeed.
    ``possible`` returns ``None`` when the shortcut does not apply (plus sign, international prefix,
    letters that phonenumbers would read as digits) and the candidate must be parsed.
    """

    def __init__(self, regions: Sequence[str]) -> None:
        from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata
        from phonenumbers.phonenumberutil import country_code_for_region, region_code_for_country_code

        self._regions: dict[str, tuple[Any, list[Any], str, list[tuple[re.Pattern[str], frozenset[int]]], int]] = {}
        for region in regions:
            md = PhoneMetadata.metadata_for_region(region)
            cc = country_code_for_region(region)
            main = PhoneMetadata.metadata_for_region(region_code_for_country_code(cc))
            parsers = [m for m in (md, main) if m is not None]
            group = [PhoneMetadata.metadata_for_region(r) for r in COUNTRY_CODE_TO_REGION_CODE.get(cc, (region,))]
            descs = [
                (
                    re.compile(m.general_desc.national_number_pattern),
                    frozenset(n for n in m.general_desc.possible_length if n > 0),
                )
                for m in group
                if m is not None and m.general_desc is not None and m.general_desc.national_number_pattern
            ]
            idd = re.compile(md.international_prefix) if md and md.international_prefix else None
            # at most this many leading digits are removed: the country code and two national prefixes
            strip = len(str(cc)) + 2 * max(_longest_match(m.national_prefix_for_parsing) for m in parsers)
            self._regions[region] = (idd, parsers, str(cc), descs, strip)
        self._digits: dict[str, str | None] = {}

    def _national_digits(self, candidate: str) -> str | None:
        """The digits phonenumbers would read from a candidate without an extension; None when it
        would read it internationally (plus sign) or turn letters into digits."""
        if candidate in self._digits:
            return self._digits[candidate]
        from phonenumbers.phonenumberutil import (
            _VALID_ALPHA_PHONE_PATTERN,
            NumberParseException,
            _build_national_number_for_parsing,
            _maybe_strip_extension,
            normalize_digits_only,
        )

        digits: str | None = None
        if not any(p in candidate for p in _PLUS):
            try:
                number = _maybe_strip_extension(_build_national_number_for_parsing(candidate))[1]
            except NumberParseException:
                number = None
            if number is not None and not _VALID_ALPHA_PHONE_PATTERN.match(number):
                digits = _ASCII_NON_DIGITS.sub("", number) if number.isascii() else normalize_digits_only(number)
        if len(self._digits) > 100_000:
            self._digits.clear()
        self._digits[candidate] = digits
        return digits

    def possible(self, region: str, candidate: str) -> bool | None:
        from phonenumbers.phonenumberutil import _maybe_strip_national_prefix_carrier_code

        entry = self._regions.get(region)
        if entry is None:
            return None
        digits = self._national_digits(candidate)
        if digits is None:
            return None
        idd, parsers, cc, descs, strip = entry
        if idd is None or idd.match(digits):
            return None  # international: any region's rules apply
        n = len(digits)
        if not any(n - strip <= length <= n for _, lengths in descs for length in lengths):
            return False
        starts = [digits, digits[len(cc) :]] if digits.startswith(cc) else [digits]
        nsns = set(starts)
        for md in parsers:
            for x in starts:
                once = _maybe_strip_national_prefix_carrier_code(x, md)[1]
                nsns.add(once)
                nsns.add(_maybe_strip_national_prefix_carrier_code(once, md)[1])
        for nsn in nsns:
            size = len(nsn)
            for pattern, lengths in descs:
                if size in lengths and pattern.fullmatch(nsn):
                    return True
        return False


def _longest_match(pattern: str | None) -> int:
    """The most characters ``pattern`` can match (huge when unbounded), from the stdlib's parser."""
    if not pattern:
        return 0
    import re._parser as sre_parse

    return int(sre_parse.parse(pattern).getwidth()[1])


class CandidateScan:
    """phonenumbers' candidate search over one text, shared by every region.

    ``at(index)`` is what ``_PATTERN.search(text, index)`` finds, after the second-number trim, with
    its digit count and whether it holds a plus sign. ``chain`` is the sequence of candidates a
    matcher visits from the start of the text while nothing matches (each search starts where the
    previous candidate ended); ``eligible(floors)`` are the positions in that chain of the candidates
    with enough digits for a region, so a region can jump over the others.
    """

    def __init__(self, text: str) -> None:
        from phonenumbers.phonenumbermatcher import _PATTERN
        from phonenumbers.phonenumberutil import _SECOND_NUMBER_START_PATTERN

        self.text = text
        self._pattern = _PATTERN
        self._second = _SECOND_NUMBER_START_PATTERN
        self._found: dict[int, tuple[int, str, int, bool] | None] = {}
        self.chain: list[tuple[int, str, int, bool]] = []
        self.boundary: dict[int, int] = {}  # search start -> position in chain
        index = 0
        while (found := self.at(index)) is not None:
            self.boundary[index] = len(self.chain)
            self.chain.append(found)
            index = found[0] + len(found[1])
        self.boundary[index] = len(self.chain)
        self._eligible: dict[tuple[int, int], list[int]] = {}

    def at(self, index: int) -> tuple[int, str, int, bool] | None:
        hit = self._found.get(index, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        m = self._pattern.search(self.text, index)
        if m is None:
            result = None
        else:
            candidate = m.group()
            trailing = self._second.search(candidate)
            if trailing:
                candidate = candidate[: trailing.start()]
            result = (m.start(), candidate, len(_DIGIT.findall(candidate)), any(p in candidate for p in _PLUS))
        self._found[index] = result
        return result

    def eligible(self, floors: tuple[int, int]) -> list[int]:
        found = self._eligible.get(floors)
        if found is None:
            national, international = floors
            with_plus = min(national, international)
            found = [k for k, (_, _, d, plus) in enumerate(self.chain) if d >= (with_plus if plus else national)]
            self._eligible[floors] = found
        return found


def build_recognizers(
    entities: Sequence[str], phone_regions: Sequence[str] = PHONE_REGIONS, phone: PhoneState | None = None
) -> dict[str, Any]:
    """presidio recognizers by entity: stock ones, the offline e-mail one and the gated phone one."""
    import phonenumbers
    from phonenumbers import PhoneNumberMatcher
    from phonenumbers.phonenumbermatcher import _TIME_STAMPS_SUFFIX, PhoneNumberMatch
    from presidio_analyzer import EntityRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    state = phone or PhoneState()
    tld = offline_tld_extractor()
    floors = phone_digit_floors(phone_regions)
    precheck = NationalPrecheck(phone_regions)
    latin = PhoneNumberMatcher._is_latin_letter
    invalid = PhoneNumberMatcher._is_invalid_punctuation_symbol
    valid = phonenumbers.Leniency.VALID

    class OfflineEmailRecognizer(EmailRecognizer):
        """presidio's e-mail recognizer with its domain check on the bundled public-suffix list."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(tld(pattern_text).fqdn != "")

    class GatedMatcher(PhoneNumberMatcher):
        """phonenumbers' matcher, same matches, with the shortcuts described in the module docs."""

        def __init__(self, scan: CandidateScan, region: str, leniency: Any) -> None:
            super().__init__(scan.text, region, leniency=leniency)
            self._region = region
            self._scan = scan
            self._national, self._international = floors[region]

        def _find(self, index: int) -> Any:
            # phonenumbers' _find over the shared scan: a candidate with fewer digits than the region's
            # floor cannot verify, nor can any part of it, so it is passed over without evaluation
            scan = self._scan
            floors = (self._national, self._international)
            k = scan.boundary.get(index)
            while k is None:  # off the shared chain (after a match inside a candidate)
                found = scan.at(index)
                if found is None or self._max_tries <= 0:
                    return None
                start, candidate, digits, plus = found
                if digits >= (min(floors) if plus else floors[0]):
                    match = self._extract_match(candidate, start)
                    if match is not None:
                        return match
                self._max_tries -= 1
                index = start + len(candidate)
                k = scan.boundary.get(index)
            eligible = scan.eligible(floors)
            for j in range(bisect.bisect_left(eligible, k), len(eligible)):
                kk = eligible[j]
                self._max_tries -= kk - k  # the candidates passed over count as failed tries
                if self._max_tries <= 0:
                    return None
                start, candidate, _, _ = scan.chain[kk]
                match = self._extract_match(candidate, start)
                if match is not None:
                    return match
                self._max_tries -= 1
                k = kk + 1
            return None

        def _extract_match(self, candidate: str, offset: int) -> Any:
            # The verdict depends on the candidate, the region, the leniency and three facts about
            # its neighbours (phonenumbers' latin-letter / currency test before and after it, and
            # its time-stamp test after it), so it is memoised on exactly those.
            text = self.text
            end = offset + len(candidate)
            prev_bad = offset > 0 and (invalid(text[offset - 1]) or latin(text[offset - 1]))
            next_bad = end < len(text) and (invalid(text[end]) or latin(text[end]))
            stamp = _TIME_STAMPS_SUFFIX.match(text, end) is not None
            key = (self._region, int(self.leniency), candidate, prev_bad, next_bad, stamp)
            hit: Any = state.matches.get(key)
            if hit is None:
                match = super()._extract_match(candidate, offset)
                hit = (match.start - offset, match.raw_string, match.number) if match is not None else False
                if len(state.matches) >= state.memo_size:
                    state.matches.clear()
                state.matches[key] = hit
            if hit is False:
                return None
            return PhoneNumberMatch(offset + hit[0], hit[1], hit[2])

        def _parse_and_verify(self, candidate: str, offset: int) -> Any:
            floor = self._international if any(p in candidate for p in _PLUS) else self._national
            if len(_DIGIT.findall(candidate)) < floor:
                return None
            text = self.text
            if self.leniency >= valid:
                if offset > 0 and not _LEAD.match(candidate):
                    prev = text[offset - 1]
                    if invalid(prev) or latin(prev):
                        return None
                last = offset + len(candidate)
                if last < len(text):
                    nxt = text[last]
                    if invalid(nxt) or latin(nxt):
                        return None
            key = (self._region, int(self.leniency), candidate)
            number: Any = state.memo.get(key)
            if number is None and precheck.possible(self._region, candidate) is False:
                number = False
            if number is None:
                if state.on_attempt is not None:
                    state.on_attempt()
                found = super()._parse_and_verify(candidate, offset)
                number = found.number if found is not None else False
                if len(state.memo) >= state.memo_size:
                    state.memo.clear()
                state.memo[key] = number
            return PhoneNumberMatch(offset, candidate, number) if number is not False else None

    class GatedPhoneRecognizer(PhoneRecognizer):
        """presidio's phone recognizer (same regions, leniency, scores) over :class:`GatedMatcher`."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            scan = CandidateScan(text)
            results = []
            for region in self.supported_regions:
                for match in GatedMatcher(scan, region, self.leniency):
                    try:
                        parsed = phonenumbers.parse(text[match.start : match.end])
                        found_region = phonenumbers.region_code_for_number(parsed)
                    except phonenumbers.NumberParseException:
                        found_region = region
                    results.append(self._get_recognizer_result(match, text, found_region, nlp_artifacts))
            return EntityRecognizer.remove_duplicates(results)

    factories: dict[str, Callable[[], Any]] = {
        EMAIL: lambda: OfflineEmailRecognizer(name="EmailRecognizer"),
        PHONE: lambda: GatedPhoneRecognizer(supported_regions=tuple(phone_regions), name="PhoneRecognizer"),
        IP: IpRecognizer,
        CARD: CreditCardRecognizer,
        IBAN: IbanRecognizer,
        CRYPTO: CryptoRecognizer,
        SSN: UsSsnRecognizer,
    }
    unknown = [e for e in entities if e not in factories]
    if unknown:
        raise ValueError(f"unsupported PII entities {unknown}; supported: {', '.join(ENTITIES)}")
    return {e: factories[e]() for e in entities}


def reference_analyzer(entities: Sequence[str] = ENTITIES, phone_regions: Sequence[str] = PHONE_REGIONS) -> Any:
    """Stock presidio for ``entities``: its ``AnalyzerEngine``, its own pattern recognizers and
    ``NoOpNlpEngine`` (no model download); only the e-mail domain check is kept offline. Tests and
    benchmarks compare the fast detector against it."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    tld = offline_tld_extractor()

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(tld(pattern_text).fqdn != "")

    factories: dict[str, Callable[[], Any]] = {
        EMAIL: lambda: OfflineEmailRecognizer(name="EmailRecognizer"),
        PHONE: lambda: PhoneRecognizer(supported_regions=tuple(phone_regions)),
        IP: IpRecognizer,
        CARD: CreditCardRecognizer,
        IBAN: IbanRecognizer,
        CRYPTO: CryptoRecognizer,
        SSN: UsSsnRecognizer,
    }
    registry = RecognizerRegistry(recognizers=[factories[e]() for e in entities], supported_languages=["en"])
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}]),
        supported_languages=["en"],
    )
