"""Render :class:`ReportData` as one self-contained HTML page (inline SVG and CSS, no network)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from headrace.report import svg
from headrace.report.collect import ReportData, ordered_stages
from headrace.report.gates import GateResult

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f3f4f7;color:#1d2330}
header{background:#1d2a44;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header .sub{opacity:.8;font-size:13px}
main{padding:18px 28px;max-width:1400px}
section{background:#fff;border-radius:8px;padding:14px 18px;margin:0 0 16px;box-shadow:0 1px 2px #0001}
section h2{font-size:16px;margin:0 0 10px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:16px}
svg.plot{max-width:100%;height:auto}
.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{background:#f6f7fb;border-radius:6px;padding:8px 14px;min-width:140px}
.kpi b{display:block;font-size:20px}
.kpi span{font-size:12px;color:#556}
table{border-collapse:collapse;font-size:13px;width:100%}
td,th{border-bottom:1px solid #e4e6ec;padding:4px 8px;text-align:left;vertical-align:top}
.pass{color:#1f7a3f;font-weight:600}.fail{color:#b22;font-weight:600}
.excerpt{color:#334;font-size:12px}
.muted{color:#667;font-size:12px}
"""

# Errors are recorded on <html data-js-errors> from the first script on, so a headless browser's dumped
# DOM tells whether anything failed; the check at the end counts plots laid out with marks and a box.
ERRORS_JS = """
window.__reportErrors = [];
window.addEventListener('error', function(e){
  window.__reportErrors.push(String(e.message || e.type));
  document.documentElement.setAttribute('data-js-errors', window.__reportErrors.join(' | '));
}, true);
"""
CHECK_JS = """
(function(){
  var plots = document.querySelectorAll('svg.plot'), ok = 0, marks = 0, names = [];
  plots.forEach(function(p){
    var b = p.getBBox ? p.getBBox() : null, r = p.getBoundingClientRect();
    var n = p.querySelectorAll('rect,line,path,circle,text').length;
    if (b && b.width > 0 && b.height > 0 && r.width > 0 && r.height > 0 && n > 0) { ok++; marks += n; }
    else { names.push(p.getAttribute('data-plot')); } });
  var body = document.body;
  body.setAttribute('data-plots-total', plots.length);
  body.setAttribute('data-plots-rendered', ok);
  body.setAttribute('data-plots-marks', marks);
  body.setAttribute('data-plots-broken', names.join(','));
  body.setAttribute('data-check-done', '1');
})();
"""


#: Stages whose ledger values are not quality measurements (sizes, similarity estimates).
NOT_QUALITY_STAGES = frozenset({"extract", "replay", "policy", "blocklist", "dedup", "shards"})


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _kpi(label: str, value: str) -> str:
    return f"<div class='kpi'><b>{_e(value)}</b><span>{_e(label)}</span></div>"


def _section(title: str, body: str, anchor: str) -> str:
    return f"<section id='{anchor}'><h2>{_e(title)}</h2>{body}</section>"


def _table(rows: Sequence[Sequence[object]], head: Sequence[str]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _optout_note(data: ReportData) -> str:
    policy = {k: v for k, v in data.dropped_by_stage.items() if k in ("policy", "blocklist")}
    if not policy:
        return "<p class='muted'>No page was dropped by the opt-out policy or the blocklist.</p>"
    text = ", ".join(f"{k}: {v:,}" for k, v in policy.items())
    return f"<p class='muted'>Pages dropped by opt-out policy / blocklist: {_e(text)}.</p>"


def render(
    data: ReportData,
    gates: Sequence[GateResult] = (),
    *,
    thresholds: Mapping[str, Sequence[tuple[str, float]]] | None = None,
    lineage: Mapping[str, Any] | None = None,
    title: str = "Corpus scorecard",
) -> str:
    thresholds = thresholds or {}
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts: list[str] = []

    kpis = "".join(
        [
            _kpi("documents kept", f"{data.kept_docs:,}"),
            _kpi("tokens", f"{data.kept_tokens:,}"),
            _kpi("shards", f"{data.shards:,}"),
            _kpi("documents in", f"{data.docs_in:,}"),
            _kpi("dropped", f"{data.dropped_total:,}"),
            _kpi("dead letters", f"{sum(data.dead_letters.values()):,}"),
            _kpi("dedup drop rate", f"{100 * data.dedup_drop_rate():.1f}%"),
            _kpi("duplicates left", f"{100 * data.corpus_duplicate_rate():.2f}%"),
            _kpi("residual PII / M tokens", f"{data.residual_pii_per_million_tokens():.1f}"),
            _kpi("cleanliness", f"{100 * data.cleanliness():.1f}%"),
        ]
    )
    gate_rows = [
        (
            _e(g.metric),
            f"{g.value:.4g}",
            f"{g.comparison} {g.threshold:g}",
            "<span class='pass'>pass</span>" if g.passed else "<span class='fail'>FAIL</span>",
        )
        for g in gates
    ]
    summary = f"<div class='kpis'>{kpis}</div>"
    if data.scan_skipped:
        summary += f"<p class='fail'>Text scan incomplete: {_e(data.scan_skipped)}</p>"
    if gate_rows:
        summary += "<h2 style='margin-top:14px'>Release gates</h2>" + _table(
            gate_rows, ["metric", "value", "threshold", "result"]
        )
    parts.append(_section("Summary", summary, "summary"))

    lin_rows: list[tuple[str, str]] = []
    for k, v in (lineage or {}).items():
        lin_rows.append((_e(k), _e(v)))
    for name, n in data.pipelines.most_common(5):
        lin_rows.append(("pipeline", f"{_e(name)} <span class='muted'>({n:,} docs)</span>"))
    for name, n in data.tokenizers.most_common(5):
        lin_rows.append(("tokenizer", f"{_e(name)} <span class='muted'>({n:,} docs)</span>"))
    inputs = data.inputs + data.inputs_dropped
    for name, _ in inputs.most_common(30):
        counts = f"{data.inputs.get(name, 0):,} kept, {data.inputs_dropped.get(name, 0):,} dropped"
        lin_rows.append(("input", f"{_e(name)} <span class='muted'>({counts})</span>"))
    if len(inputs) > 30:
        lin_rows.append(("input", f"<span class='muted'>… and {len(inputs) - 30:,} more</span>"))
    parts.append(_section("Lineage", _table(lin_rows, ["what", "value"]), "lineage"))

    reasons = [(k, float(v)) for k, v in data.dropped_by_reason.most_common()]
    parts.append(
        "<div class='grid'>"
        + _section(
            "Documents per stage (funnel)",
            svg.funnel("funnel", [(k, float(v)) for k, v in data.funnel()])
            + "<p class='muted'>Documents remaining after each stage (kept documents plus the decision ledger).</p>"
            + svg.funnel("funnel-tokens", [(k, float(v)) for k, v in data.token_funnel()])
            + "<p class='muted'>Tokens remaining after each stage: exact for the kept documents; dropped "
            "documents are estimated from their characters at the corpus's tokens per character "
            f"({data.tokens_per_char():.3f}), pages dropped before extraction count zero.</p>",
            "funnel",
        )
        + _section("Drops by stage and reason", svg.hbar("drops-by-reason", reasons, color=svg.PALETTE[3]), "drops")
        + "</div>"
    )
    stage_items = [(s, float(data.dropped_by_stage[s])) for s in ordered_stages(data.dropped_by_stage)]
    parts.append(_section("Drops by stage", svg.hbar("drops-by-stage", stage_items, color=svg.PALETTE[3]), "stages"))

    parts.append(
        "<div class='grid'>"
        + _section(
            "Language mix (kept)",
            svg.stacked_share("languages", [(k, float(v)) for k, v in data.languages_kept.most_common()])
            + (
                f"<p class='muted'>{data.languages_identified:,} kept documents had no language label; the "
                "report identified them with the pipeline's language model.</p>"
                if data.languages_identified
                else ""
            )
            + (
                "<h3 style='font-size:13px;margin:6px 0'>Dropped by the language filter (best label)</h3>"
                + svg.hbar(
                    "languages-dropped",
                    [(k, float(v)) for k, v in data.languages_dropped.most_common(15)],
                    color=svg.PALETTE[3],
                )
                if data.languages_dropped
                else ""
            ),
            "languages",
        )
        + _section(
            "Document length",
            svg.histogram("doc-tokens", data.doc_tokens, log_x=True, x_label="tokens per document")
            + (
                svg.histogram("doc-chars", data.doc_chars, log_x=True, x_label="characters per document")
                if data.doc_chars
                else ""
            ),
            "lengths",
        )
        + "</div>"
    )

    signals = sorted(
        name
        for name in set(data.quality_kept) | set(data.quality_dropped)
        if name.split(".", 1)[0] not in NOT_QUALITY_STAGES
    )
    charts = []
    for name in signals:
        kept, dropped = data.quality_kept.get(name, []), data.quality_dropped.get(name, [])
        if len(kept) + len(dropped) < 2:
            continue
        charts.append(
            f"<div><h3 style='font-size:13px;margin:6px 0'>{_e(name)}</h3>"
            + svg.histogram(
                f"quality-{name}",
                kept,
                second=dropped,
                thresholds=thresholds.get(name, ()),
                x_label=name,
                series_label="kept",
                second_label="dropped",
                width=620,
                height=170,
            )
            + "</div>"
        )
    parts.append(
        _section(
            "Quality signals (dashed lines: thresholds)",
            "<div class='grid'>" + "".join(charts) + "</div>"
            if charts
            else svg.empty("quality", "no quality signals recorded (quality annotations switched off?)"),
            "quality",
        )
    )

    dup_basis = "measured on the kept text with the dedup stage's keys" if data.scanned_docs else "content hashes only"
    dup_items = [
        ("dropped as exact duplicates", float(data.dropped_by_reason.get("dedup/exact-duplicate", 0))),
        ("dropped as near duplicates", float(data.dropped_by_reason.get("dedup/near-duplicate", 0))),
        ("exact duplicates left in corpus", float(data.corpus_exact_duplicates)),
        ("near duplicates left in corpus", float(data.corpus_near_duplicates)),
    ]
    pii_items = [(f"scrubbed {k}", float(v)) for k, v in data.pii_scrubbed.most_common()] + [
        (f"left in corpus {k}", float(v)) for k, v in data.residual_pii.most_common()
    ]
    parts.append(
        "<div class='grid'>"
        + _section(
            "Duplicates",
            svg.hbar("duplicates", dup_items, color=svg.PALETTE[1])
            + f"<p class='muted'>dedup drop rate {100 * data.dedup_drop_rate():.2f}% of documents reaching dedup; "
            f"duplicates left {100 * data.corpus_duplicate_rate():.3f}% of kept documents "
            f"({dup_basis}).</p>",
            "dups",
        )
        + _section(
            "PII by entity",
            svg.hbar("pii", pii_items, color=svg.PALETTE[4])
            if pii_items
            else svg.empty("pii", "no PII scrubbed and none found in the kept text"),
            "pii",
        )
        + "</div>"
    )
    parts.append(
        "<div class='grid'>"
        + _section(
            "Top domains kept",
            svg.hbar("domains-kept", [(k, float(v)) for k, v in data.kept_domains.most_common(15)]),
            "domains-kept",
        )
        + _section(
            "Top domains dropped",
            svg.hbar(
                "domains-dropped",
                [(k, float(v)) for k, v in data.dropped_domains.most_common(15)],
                color=svg.PALETTE[3],
            ),
            "domains-dropped",
        )
        + "</div>"
    )
    opt_items = (
        [(f"kept, signal {k}", float(v)) for k, v in data.signals_kept.most_common()]
        + [("kept, no signal recorded", float(data.kept_without_signals))]
        + [(f"dropped by {k}", float(data.dropped_by_stage.get(k, 0))) for k in ("policy", "blocklist")]
        + [(f"dropped, signal {k}", float(v)) for k, v in data.signals_dropped.most_common()]
    )
    opt_items = [(k, v) for k, v in opt_items if v > 0]
    hygiene = [(k, float(v)) for k, v in data.hygiene_flags.most_common()]
    parts.append(
        "<div class='grid'>"
        + _section(
            "Opt-out and robots decisions",
            svg.hbar("optout", opt_items, color=svg.PALETTE[5], label_width=260) + _optout_note(data),
            "optout",
        )
        + _section(
            "Text hygiene of kept documents",
            svg.hbar("hygiene", hygiene, color=svg.PALETTE[6])
            if hygiene
            else svg.empty("hygiene", f"no hygiene flags in {data.scanned_docs:,} scanned documents"),
            "hygiene",
        )
        + "</div>"
    )

    sample_rows = [
        (
            f"<a href='{_e(s.url)}'>{_e(s.url)}</a><br><span class='muted'>{_e(s.id)}</span>",
            f"<span class='excerpt'>{_e(s.excerpt)}</span>",
        )
        for s in data.samples_kept
    ]
    dropped_rows = []
    for key in sorted(data.samples_dropped, key=lambda k: -data.dropped_by_reason.get(k, 0)):
        for s in data.samples_dropped[key]:
            vals = ", ".join(f"{k}={v:.3g}" for k, v in list(s.values.items())[:6])
            dup = f"<br>duplicate of {_e(s.duplicate_of)}" if s.duplicate_of else ""
            dropped_rows.append(
                (
                    _e(key),
                    f"<a href='{_e(s.url)}'>{_e(s.url)}</a>{dup}",
                    f"<span class='muted'>{_e(vals)}</span><br><span class='excerpt'>{_e(s.excerpt)}</span>",
                )
            )
    parts.append(_section("Sample of kept documents", _table(sample_rows, ["document", "text"]), "samples-kept"))
    parts.append(
        _section(
            "Sample of dropped documents, per reason",
            _table(dropped_rows, ["stage/reason", "document", "values and text"]),
            "samples-dropped",
        )
    )
    if data.dead_letters:
        parts.append(
            _section(
                "Dead letters",
                _table([(_e(k), f"{v:,}") for k, v in data.dead_letters.most_common()], ["reason", "messages"]),
                "dlq",
            )
        )

    body = "".join(parts)
    meta = json.dumps({"generated": generated, "shards_dir": data.shards_dir})
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{_e(title)}</title>"
        f"<style>{CSS}</style><script>{ERRORS_JS}</script></head><body>"
        f"<header><h1>{_e(title)}</h1><div class='sub'>{_e(data.shards_dir)} · generated {generated}</div></header>"
        f"<main>{body}</main><script type='application/json' id='report-meta'>{_e(meta)}</script>"
        f"<script>{CHECK_JS}</script></body></html>"
    )
