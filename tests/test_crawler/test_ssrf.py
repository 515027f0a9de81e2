"""SSRF guard: private, loopback and link-local targets are refused after DNS resolution."""

from __future__ import annotations

import pytest

from crawler.ssrf import SsrfConfig, TargetGuard, TargetRefused, classify, system_resolve


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not globally routable"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_classify(address: str, reason: str | None) -> None:
    assert classify(address) == reason


def fake_resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return lambda host, port: table.get(host, [])


def test_refusal_happens_after_resolution() -> None:
    guard = TargetGuard(
        SsrfConfig(),
        resolver=fake_resolver({"public.example": ["93.184.216.34"], "sneaky.example": ["93.184.216.34", "127.0.0.1"]}),
    )
    assert guard.check("public.example") == ["93.184.216.34"]
    with pytest.raises(TargetRefused) as info:
        guard.check("sneaky.example")
    assert info.value.reason == "loopback" and info.value.address == "127.0.0.1"
    assert guard.check("does-not-resolve.example") == []


def test_numeric_spellings_resolve_to_loopback() -> None:
    guard = TargetGuard(SsrfConfig())
    for host in ("127.0.0.1", "localhost", "2130706433", "0x7f000001"):
        addrs = system_resolve(host, 80)
        if not addrs:
            continue
        with pytest.raises(TargetRefused):
            guard.check(host)


def test_explicit_exceptions() -> None:
    resolver = fake_resolver({"intranet.corp": ["10.0.0.5"], "box.lab.corp": ["10.9.9.9"]})
    assert TargetGuard(SsrfConfig(allow_private=True), resolver=resolver).check("intranet.corp") == []
    nets = TargetGuard(SsrfConfig(allow_networks=("10.0.0.0/24",)), resolver=resolver)
    assert nets.check("intranet.corp") == ["10.0.0.5"]
    with pytest.raises(TargetRefused):
        nets.check("box.lab.corp")
    hosts = TargetGuard(SsrfConfig(allow_hosts=(".lab.corp",)), resolver=resolver)
    hosts.check("box.lab.corp")
    with pytest.raises(TargetRefused):
        hosts.check("intranet.corp")
