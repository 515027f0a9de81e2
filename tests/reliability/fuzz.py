"""Fast mutation fuzzing of the WARC reader and the message codec (no per-example framework overhead).

Each loop draws a seed, applies 1-4 random mutations, and runs the target in-process under a
per-input time limit (``SIGALRM`` interrupts a hang and it is counted, never waited out). The only
exceptions allowed are the target's declared ones:

* WARC reader (:class:`crawler.warc.WarcReader`): none. It must turn every damage into a ``Damaged``
  or ``Skipped`` item, hand out positions inside the file that move forward, and end.
* Codec (:func:`streams.codec.decode` / ``decode_as``): :class:`streams.codec.DecodeError` only; a
  message that decodes must re-encode to a message that decodes to the same record, and must turn
  into JSON for the ledger.
* Page decoding (:func:`consumers.decode.decode_html`): none, for any bytes and any charset label.

Peak RSS is the process's ``ru_maxrss`` after the loop. ``python tests/reliability/fuzz.py warc
--inputs 1000000`` is the nightly run (``make fuzz-nightly``); it prints a JSON summary.
"""

from __future__ import annotations

import argparse
import encodings
import gzip
import json
import logging
import pkgutil
import random
import resource
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import msgspec  # noqa: E402
from warcgen import arc_file, gzip_bomb_member, page, request, warc_record, warcinfo  # noqa: E402

from consumers.decode import decode_html  # noqa: E402
from crawler.replay_config import ReplayConfig  # noqa: E402
from crawler.sources import BytesSource  # noqa: E402
from crawler.warc import Damaged, WarcReader  # noqa: E402
from streams.codec import HEADER_LEN, MAGIC, DecodeError, decode, decode_as, encode, to_json  # noqa: E402
from streams.records import (  # noqa: E402
    BlockRule,
    DeadLetter,
    Document,
    Lineage,
    Page,
    Redaction,
    Rejection,
    Signal,
)

READER_CONFIG = ReplayConfig(max_record_bytes=2 * 1024 * 1024, max_payload_bytes=256 * 1024, record_time_limit_s=5)


class Hang(Exception):
    """One input ran past the per-input time limit."""


class InvariantError(Exception):
    """The target returned, but broke one of its promises."""


@dataclass
class FuzzResult:
    target: str
    inputs: int = 0
    crashes: int = 0
    hangs: int = 0
    max_input_s: float = 0.0
    elapsed_s: float = 0.0
    peak_rss_mib: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "inputs": self.inputs,
            "crashes": self.crashes,
            "hangs": self.hangs,
            "max_input_s": round(self.max_input_s, 3),
            "elapsed_s": round(self.elapsed_s, 1),
            "inputs_per_s": round(self.inputs / self.elapsed_s) if self.elapsed_s else 0,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "outcomes": dict(self.outcomes.most_common(12)),
            "examples": self.examples[:5],
        }


# ---------------------------------------------------------------------------------------- mutations


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    kind = rng.randrange(9)
    pos = rng.randrange(len(data))
    if kind == 0:
        return data[:pos]
    if kind == 1:
        return data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1 :]
    if kind == 2:
        return data[:pos] + bytes([rng.randrange(256)]) + data[pos + 1 :]
    if kind == 3:
        return data[:pos] + b"\r\n" * rng.randint(1, 3) + data[pos:]
    if kind == 4:
        return data[:pos] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 32))) + data[pos:]
    if kind == 5:
        return data[:pos] + data[pos + rng.randint(1, 200) :]
    if kind == 6:  # duplicate a slice (repeated headers, repeated members)
        end = min(len(data), pos + rng.randint(1, 400))
        return data[:end] + data[pos:end] + data[end:]
    if kind == 7:  # interesting integers where digits were
        digits = [i for i in range(len(data)) if 48 <= data[i] <= 57]
        if digits:
            i = rng.choice(digits)
            j = i
            while j < len(data) and 48 <= data[j] <= 57:
                j += 1
            val = rng.choice([b"0", b"-1", b"-5", b"1", b"99999999", b"9223372036854775808", b"1e9", b"0x10", b""])
            return data[:i] + val + data[j:]
        return data
    # splice a magic: gzip header, WARC version line, HTTP status
    magic = rng.choice([b"\x1f\x8b\x08\x00", b"WARC/1.0\r\n", b"HTTP/1.1 200 OK\r\n", b"\x1f\x8b", b"\x00" * 8])
    return data[:pos] + magic + data[pos:]


def _content_length(rec: bytes, rng: random.Random) -> bytes:
    head, sep, rest = rec.partition(b"Content-Length: ")
    if not sep:
        return rec
    value, nl, tail = rest.partition(b"\r\n")
    n = int(value) if value.isdigit() else 0
    new = rng.choice([n + 1, n - 1, n + 1000, max(0, n - 1000), -n - 1, 2**63, 0, 2**31])
    return head + sep + str(new).encode() + nl + tail


# -------------------------------------------------------------------------------------------- WARC


def warc_seeds() -> list[bytes]:
    html = b"<!doctype html><html><body>" + b"<p>hello world text</p>" * 40 + b"</body></html>"
    recs = [
        warcinfo(),
        request(1),
        page(1),
        page(2, body=html),
        page(3, http_content_type="application/pdf"),
        page(4),
        warc_record(
            "metadata", url="http://example.com/4", block=b"via: x\r\n", content_type="application/warc-fields"
        ),
    ]
    seeds = [b"".join(recs), gzip.compress(b"".join(recs)), b"".join(gzip.compress(r) for r in recs)]
    seeds.append(arc_file([("http://example.com/a", html), ("http://example.com/b", b"<p>b</p>")]))
    seeds.append(
        b"".join(
            warc_record(url=f"http://example.com/v{v}", version=v, block=b"HTTP/1.1 200 OK\r\n\r\n<p>x</p>")
            for v in ("0.17", "1.1", "2.0")
        )
    )
    return seeds


def quirk_seeds() -> list[bytes]:
    from conftest import shared_data_dir

    d = shared_data_dir()
    out: list[bytes] = []
    if d is None:
        return out
    for name in (
        "quirks/warcio_example-trunc.warc",
        "quirks/warcio_bad.arc",
        "quirks/resiliparse_clipped.warc.gz",
        "quirks/clueweb09_ja_quirk.warc.gz",
        "aut_issue-493.warc",
    ):
        p = d / name
        if p.is_file():
            out.append(p.read_bytes()[:24_000])
    return out


def make_warc_input(rng: random.Random, seeds: list[bytes], recs: list[bytes], bomb: bytes) -> bytes:
    r = rng.random()
    if r > 0.98:  # a gzip bomb member between good ones (8 MiB of NULs): rarer, it is the slow input
        data = bomb
        return mutate_bytes(rng, data) if rng.random() < 0.5 else data
    if r < 0.25:  # record-level damage in a well-formed archive, then maybe gzip
        chosen = [rng.choice(recs) for _ in range(rng.randint(1, 6))]
        i = rng.randrange(len(chosen))
        chosen[i] = _content_length(chosen[i], rng)
        mode = rng.randrange(3)
        data = (
            b"".join(chosen)
            if mode == 0
            else gzip.compress(b"".join(chosen), 1)
            if mode == 1
            else b"".join(gzip.compress(c, 1) for c in chosen)
        )
    else:
        data = rng.choice(seeds)
    for _ in range(rng.randint(0 if r < 0.25 else 1, 4)):
        data = mutate_bytes(rng, data)
    return data


def run_warc(data: bytes) -> str:
    last = 0
    n_pages = n_damage = 0
    for item, nxt in WarcReader(BytesSource("fuzz", data), READER_CONFIG):
        if isinstance(item, Page):
            n_pages += 1
        elif isinstance(item, Damaged):
            n_damage += 1
            if not item.reason or not 0 <= item.offset <= len(data):
                raise InvariantError(f"damage report {item!r} outside the input")
        if nxt is not None:
            if not 0 <= nxt.offset <= len(data) or nxt.offset < last:
                raise InvariantError(f"position {nxt.offset} (last {last}, size {len(data)})")
            last = nxt.offset
    return f"pages={min(n_pages, 3)}{'+' if n_pages > 3 else ''} damage={'yes' if n_damage else 'no'}"


# ------------------------------------------------------------------------------------------- codec


def codec_seeds() -> list[bytes]:
    lin = Lineage(source="warc", warc_path="/x.warc.gz", offset=10, length=99, record_id="<urn:uuid:1>", crawl="C")
    sig = (Signal(kind="robots", verdict="allow", source="robots.txt", detail="Allow: /"),)
    recs = [
        Page(
            page_id="p1",
            url="http://e.com/",
            fetched_at="2024-01-01T00:00:00Z",
            headers={"content-type": ["text/html"]},
            body=b"<p>x</p>",
            lineage=lin,
            signals=sig,
        ),
        Document(
            doc_id="d1",
            page_id="p1",
            url="http://e.com/",
            text="hello",
            annotations={"q": 0.5},
            pii_counts={"email": 1},
            redactions=(Redaction("EMAIL", 0, 3, "re"),),
            lineage=lin,
        ),
        Rejection(id="d1", url="http://e.com/", stage="quality", reason="short", values={"words": 3.0}),
        DeadLetter(topic="t", partition=0, offset=5, reason="bad", key=b"k", value=b"\x00\x01"),
        BlockRule(rule_id="r1", kind="url-prefix", value="http://e.com/"),
    ]
    return [encode(r) for r in recs]


def _random_msgpack(rng: random.Random, depth: int = 0) -> Any:
    k = rng.randrange(10 if depth < 3 else 6)
    if k == 0:
        return None
    if k == 1:
        return rng.choice([0, -1, 2**63 - 1, -(2**63), 2**64 - 1, rng.randint(-1000, 1000)])
    if k == 2:
        return rng.choice([0.0, -0.0, float("inf"), float("nan"), 1e308, rng.random()])
    if k == 3:
        return rng.choice(["", "page_id", "url", "doc_id", "text", "x" * rng.randint(0, 50), "\ud7ff\u2028"])
    if k == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))
    if k == 5:
        return rng.choice([True, False])
    if k in (6, 7):
        return [_random_msgpack(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = [
        "page_id",
        "url",
        "fetched_at",
        "body",
        "headers",
        "lineage",
        "signals",
        "doc_id",
        "text",
        "id",
        "stage",
        "reason",
        "topic",
        "partition",
        "offset",
        "rule_id",
        "kind",
        "value",
        "redactions",
        "source",
    ]
    return {rng.choice(keys): _random_msgpack(rng, depth + 1) for _ in range(rng.randint(0, 8))}


_PACK = msgspec.msgpack.Encoder()


def make_codec_input(rng: random.Random, seeds: list[bytes]) -> bytes:
    r = rng.random()
    if r < 0.3:  # a valid header over a random (but well-formed msgpack) body: type confusion
        return MAGIC + bytes((rng.choice([1, 1, 1, 0, 2, 255]), rng.randint(0, 6))) + _PACK.encode(_random_msgpack(rng))
    data = rng.choice(seeds)
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.2:
            i = rng.randrange(HEADER_LEN)
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
        else:
            data = mutate_bytes(rng, data)
    return data


def run_codec(data: bytes) -> str:
    try:
        rec = decode(data)
    except DecodeError as exc:
        return f"DecodeError:{exc.reason}"
    again = decode(encode(rec))
    if again != rec:
        raise InvariantError("re-encoding changed the record")
    to_json(rec)
    try:
        decode_as(data, Page)
    except DecodeError as exc:
        return f"decoded:{type(rec).__name__}/as-page:{exc.reason}"
    return f"decoded:{type(rec).__name__}"


# ----------------------------------------------------------------------------------------- charset


def charset_labels() -> list[str]:
    names = sorted({m.name for m in pkgutil.iter_modules(encodings.__path__)} - {"aliases"})
    return [*names, *list(encodings.aliases.aliases)[:200], "utf-7", "x-user-defined", "", "bogus", "utf-8;q=1"]


def make_html_input(rng: random.Random, labels: list[str]) -> tuple[bytes, str]:
    body = rng.choice(
        [
            b"<p>caf\xc3\xa9</p>",
            b"\xff\xfe<\x00p\x00>\x00",
            b"<meta charset=x>\x80\x81\xfe",
            b"abc\\x",
            b"\xef\xbb\xbf<p>bom</p>",
            bytes(rng.randrange(256) for _ in range(64)),
        ]
    )
    for _ in range(rng.randint(0, 2)):
        body = mutate_bytes(rng, body)
    label = rng.choice(labels)
    if rng.random() < 0.3:
        body = f"<meta charset={label}>".encode() + body
        return body, "text/html"
    return body, f"text/html; charset={label}"


# -------------------------------------------------------------------------------------------- loop


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def fuzz(target: str, inputs: int, seed: int = 1, time_limit_s: float = 10.0) -> FuzzResult:
    rng = random.Random(seed)
    res = FuzzResult(target)
    make: Callable[[], Any]
    run: Callable[[Any], str]
    if target == "warc":
        seeds = warc_seeds() + quirk_seeds()
        recs = [
            warcinfo(),
            request(1),
            page(1),
            page(2),
            page(3),
            warc_record("resource", url="http://e.com/r", content_type="text/html", block=b"<p>r</p>"),
        ]
        bomb_head = (
            b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.com/9\r\n"
            b"Content-Length: 8388652\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
        )
        bomb = gzip.compress(page(1)) + gzip_bomb_member(bomb_head, 8 * 1024 * 1024) + gzip.compress(page(2))
        make = lambda: make_warc_input(rng, seeds, recs, bomb)  # noqa: E731
        run = run_warc
    elif target == "codec":
        cseeds = codec_seeds()
        make = lambda: make_codec_input(rng, cseeds)  # noqa: E731
        run = run_codec
    elif target == "charset":
        labels = charset_labels()
        make = lambda: make_html_input(rng, labels)  # noqa: E731
        run = lambda args: "ok:" + decode_html(*args)[1].split("+")[0][:12]  # noqa: E731
    else:
        raise ValueError(f"unknown target {target!r}")
    old = signal.signal(signal.SIGALRM, _alarm)
    t0 = time.monotonic()
    try:
        for _ in range(inputs):
            data = make()
            res.inputs += 1
            start = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, time_limit_s)
            try:
                res.outcomes[run(data)] += 1
            except Hang:
                res.hangs += 1
                res.outcomes["HANG"] += 1
                res.examples.append({"kind": "hang", "input_len": len(data)})
            except Exception as exc:
                res.crashes += 1
                res.outcomes[f"CRASH:{type(exc).__name__}"] += 1
                if len(res.examples) < 20:
                    res.examples.append(
                        {
                            "kind": type(exc).__name__,
                            "error": str(exc)[:200],
                            "input": repr(data)[:300],
                            "trace": traceback.format_exc().splitlines()[-3:],
                        }
                    )
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            res.max_input_s = max(res.max_input_s, time.monotonic() - start)
    finally:
        signal.signal(signal.SIGALRM, old)
    res.elapsed_s = time.monotonic() - t0
    res.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Mutation fuzzing of the WARC reader, the codec and page decoding")
    p.add_argument("target", choices=["warc", "codec", "charset"])
    p.add_argument("--inputs", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-limit-s", type=float, default=10.0)
    p.add_argument("--max-rss-mib", type=float, default=512.0)
    p.add_argument("--json", help="write the summary here too")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # warcio warns once per repaired URI: millions of lines
    res = fuzz(args.target, args.inputs, args.seed, args.time_limit_s)
    summary = res.summary()
    summary["max_rss_mib_limit"] = args.max_rss_mib
    summary["pass"] = res.crashes == 0 and res.hangs == 0 and res.peak_rss_mib < args.max_rss_mib
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0 if summary["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
