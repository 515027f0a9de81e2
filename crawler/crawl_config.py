"""Configuration of live crawls (``[crawl]`` in the TOML file), composed into ``PipelineConfig``."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from compliance.policy import OptOutPolicy
from crawler.robots import RobotsConfig, validate_token
from crawler.ssrf import SsrfConfig


class CrawlConfigError(ValueError):
    """A crawl setting that cannot work (or would make the crawler impolite or unsafe)."""


@dataclass(frozen=True)
class CrawlConfig:
    #: Product token: used in the User-Agent header and matched against robots.txt groups.
    user_agent_token: str = "headrace"  # noqa: S105 - a product token, not a secret
    #: Where site owners can read about the crawler and reach its operator (required to crawl).
    contact_url: str = ""
    #: Full User-Agent header; default ``Mozilla/5.0 (compatible; <token>/<version>; +<contact_url>)``.
    user_agent: str = ""
    robots: RobotsConfig = field(default_factory=RobotsConfig)
    policy: OptOutPolicy = field(default_factory=OptOutPolicy)
    ssrf: SsrfConfig = field(default_factory=SsrfConfig)
    # Politeness
    min_delay_s: float = 1.0  # floor between the end of one response and the next request to a host
    max_crawl_delay_s: float = 120.0  # hosts asking for a longer Crawl-delay are skipped, not hammered
    max_retry_after_s: float = 600.0  # a longer Retry-After ends the crawl of that host
    per_host_concurrency: int = 1
    concurrent_requests: int = 16
    download_timeout_s: float = 30.0
    retries: int = 2  # for 5xx/429/timeouts of pages (Retry-After is honoured)
    # Scope
    max_pages: int = 0  # pages published; 0 = no limit
    max_depth: int = 3  # link hops from a seed; 0 = no limit
    follow_links: bool = True
    stay_on_seed_hosts: bool = True  # without allow_domains, follow links only within the seeds' hosts
    allow_domains: tuple[str, ...] = ()
    deny_domains: tuple[str, ...] = ()
    max_page_bytes: int = 5 * 1024 * 1024  # body cap (marked truncated), like replay
    max_download_bytes: int = 64 * 1024 * 1024  # larger responses are abandoned
    # Opt-out signal sources fetched once per origin
    fetch_tdmrep: bool = True
    fetch_ai_txt: bool = True
    #: Do not fetch a page whose host-level signals already opt it out in a way no page signal can lift.
    skip_fetch_when_opted_out: bool = True
    #: Publish URLs refused before fetching (robots, opt-out, SSRF) as body-less pages, so each refusal
    #: reaches the decision ledger with its signals.
    record_refused: bool = True
    # Output
    warc_dir: str = ""  # write fetched responses (and robots.txt) to WARC files here
    warc_max_bytes: int = 1024 * 1024 * 1024
    warc_include_opted_out: bool = False
    publish_batch: int = 64  # pages per publisher flush (and per embedded drain)
    seeds_idle_s: float = 10.0  # a Kafka seed topic is read until idle this long

    def validate(self) -> None:
        try:
            validate_token(self.user_agent_token)
            self.robots.validate()
        except ValueError as exc:
            raise CrawlConfigError(str(exc)) from exc
        if self.min_delay_s < 0 or self.per_host_concurrency < 1 or self.concurrent_requests < 1:
            raise CrawlConfigError("min_delay_s >= 0, per_host_concurrency >= 1 and concurrent_requests >= 1")
        if self.max_crawl_delay_s < self.min_delay_s:
            raise CrawlConfigError("max_crawl_delay_s must be >= min_delay_s")

    def effective_user_agent(self, version: str = "0") -> str:
        """The User-Agent header; refuses to run without a contact URL (site owners must reach us)."""
        contact = self.contact_url.strip()
        parts = urlsplit(contact)
        if parts.scheme not in ("http", "https", "mailto") or not (parts.netloc or parts.path):
            raise CrawlConfigError(
                "crawl.contact_url must be an http(s) or mailto URL where site owners can reach the operator "
                "(config [crawl] contact_url, HEADRACE_CRAWL__CONTACT_URL or --contact-url)"
            )
        if self.user_agent:
            if self.user_agent_token.lower() not in self.user_agent.lower():
                raise CrawlConfigError("crawl.user_agent must contain the user_agent_token")
            return self.user_agent
        return f"Mozilla/5.0 (compatible; {self.user_agent_token}/{version}; +{contact})"
