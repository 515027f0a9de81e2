"""Rules for text that poisons training batches and that the datatrove rules let through.

Leftover markup (tags, entities, comment and template markers), long base64/hex blobs, control and
replacement characters, and pages made of navigation/cookie/sharing chrome. Every regex here has
bounded repetition, so the time is linear in the text length. Drops are reported under the
``hygiene`` stage so agreement with datatrove is measured on the datatrove-equivalent rules alone.
"""

from __future__ import annotations

import re

from consumers.quality.base import TextFilter, Verdict
from consumers.quality.config import HygieneConfig

_MARKUP = re.compile(
    r"</?[A-Za-z][A-Za-z0-9:-]{0,20}(?:\s[^<>\n]{0,300})?/?>"  # tags
    r"|&(?:[A-Za-z][A-Za-z0-9]{1,10}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});"  # entities
    r"|<!--|-->|\{\{|\}\}|\{%|%\}"  # comments, templates
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ud800-\udfff\ue000-\uf8ff]")
_BOILERPLATE = re.compile(
    r"(?:home|menu|search|log ?in|log ?out|sign (?:in|up|out)|register|subscribe|share|tweet|print|e-?mail"
    r"|contact(?: us)?|about(?: us)?|privacy(?: policy)?|terms(?: of (?:use|service))?|sitemap"
    r"|(?:accept|allow|reject)(?: all)?(?: cookies)?|cookie (?:settings|preferences|policy)"
    r"|skip to (?:main )?content|back to top|read more|click here|load more|show more|next|previous"
    r"|(?:copyright|©|\(c\)).{0,80}|all rights reserved\.?|follow us(?: on)?.{0,40}|share (?:this|on).{0,40}"
    r"|facebook|twitter|linkedin|instagram|pinterest|youtube|whatsapp|reddit)[\s.:!»›|>/-]{0,5}",
    re.IGNORECASE,
)
_LINE_CAP = 120  # boilerplate lines are short


class Hygiene(TextFilter):
    name = "hygiene"

    def __init__(self, config: HygieneConfig, annotate_kept: bool = True) -> None:
        super().__init__(annotate_kept)
        self.config = config
        n = max(1, config.min_blob_length)
        self._blob = re.compile(rf"[A-Za-z0-9+/]{{{n},}}={{0,2}}")

    def check(self, text: str) -> Verdict:
        cfg = self.config
        size = len(text) or 1
        values: dict[str, float] = {}

        if cfg.max_control_fraction:
            bad = len(_CONTROL.findall(text)) if _CONTROL.search(text) else 0
            frac = bad / size
            if frac > cfg.max_control_fraction:
                return Verdict("control_chars", {"control_chars": frac, "threshold": cfg.max_control_fraction})
            values["control_fraction"] = frac

        if cfg.max_markup_fraction and ("<" in text or "&" in text or "{" in text or "}" in text or "%" in text):
            chars = sum(m.end() - m.start() for m in _MARKUP.finditer(text))
            frac = chars / size
            if chars >= cfg.min_markup_chars and frac > cfg.max_markup_fraction:
                return Verdict("markup", {"markup": frac, "threshold": cfg.max_markup_fraction})
            values["markup_fraction"] = frac

        if cfg.max_blob_fraction and cfg.min_blob_length:
            chars = sum(len(b) for b in self._blob.findall(text) if looks_encoded(b))
            frac = chars / size
            if frac > cfg.max_blob_fraction:
                return Verdict("blobs", {"blobs": frac, "threshold": cfg.max_blob_fraction})
            values["blob_fraction"] = frac

        if cfg.max_boilerplate_line_fraction:
            lines = [ln.strip() for ln in text.split("\n")]
            lines = [ln for ln in lines if ln]
            chrome = sum(1 for ln in lines if len(ln) <= _LINE_CAP and _BOILERPLATE.fullmatch(ln))
            frac = chrome / (len(lines) or 1)
            if chrome >= cfg.min_boilerplate_lines and frac > cfg.max_boilerplate_line_fraction:
                return Verdict("boilerplate", {"boilerplate": frac, "threshold": cfg.max_boilerplate_line_fraction})
            values["boilerplate_line_fraction"] = frac
        return Verdict(values=values)


def looks_encoded(run: str) -> bool:
    """A run of base64 characters that looks like data, not a long word or URL path: hex with digits
    and letters, or base64 mixing digits, upper and lower case."""
    digits = sum(c.isdigit() for c in run)
    if digits == 0:
        return False
    stripped = run.rstrip("=")
    if all(c in "0123456789abcdefABCDEF" for c in stripped):
        return digits < len(stripped)
    upper = sum(c.isupper() for c in run)
    lower = sum(c.islower() for c in run)
    n = len(run)
    return upper >= 0.1 * n and lower >= 0.1 * n and digits >= 0.03 * n
