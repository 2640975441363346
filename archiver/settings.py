"""The one place configuration comes from: environment variables prefixed ``MAILVAULT_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILVAULT_", env_file=None, extra="ignore")

    es_url: str = "http://127.0.0.1:9200"
    es_index: str = Field("mailvault-messages", description="alias that searches and writes go to")
    es_request_timeout: float = 30.0
    es_shards: int = Field(
        1, ge=1, description="primary shards of a new message index (one per data node or so)"
    )
    es_replicas: int = Field(
        0, ge=0, description="replicas of each shard (1 or more on a cluster of several nodes)"
    )

    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: str = "mailvault"
    s3_secret_key: str = "mailvault-secret"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_bucket: str = "mailvault-archive"

    redis_url: str = "redis://127.0.0.1:6379/0"

    # Chinese segmentation
    user_dict: Path | None = Field(
        None, description="jieba user dictionary (word [freq] [tag] lines)"
    )

    # limits
    max_message_bytes: int = 50 * 1024 * 1024
    max_body_chars: int = 2_000_000
    max_attachment_text_chars: int = 1_000_000
    # attachment text extraction (archiver/mime/attachments.py)
    extract_attachments: bool = Field(True, description="index the text inside attachments")
    max_attachment_bytes: int = Field(
        20 * 1024 * 1024, description="larger attachments are not read (the skip is recorded)"
    )
    attachment_timeout_seconds: float = Field(10.0, description="per attachment")
    attachment_budget_seconds: float = Field(60.0, description="all attachments of a message")
    max_pdf_pages: int = Field(500, description="pages of a PDF read for text")
    import_batch_size: int = Field(
        100,
        description="messages per bulk request of an import (~2.5 MB of JSON); two batches are "
        "in flight, so this bounds the importing process's memory (250: ~45 MB more, no faster)",
    )
    import_workers: int = Field(0, description="parse/segment processes; 0 means one per core")
    store_threads: int = 16
    import_pause_refresh_bytes: int = Field(
        8 * 1024 * 1024,
        description="an import of at least this many bytes turns the index's periodic refresh "
        "off until it ends (fewer segments, less merging); 0: every import, -1: never",
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8080
    display_timezone: str = "Asia/Shanghai"

    # IMAP poller (archiver/adapters/imap.py, archiver/imap/sync.py)
    imap_accounts: Path | None = Field(None, description="TOML or JSON file of IMAP accounts")
    imap_batch_size: int = Field(100, description="messages fetched and stored per checkpoint")
    imap_batch_bytes: int = Field(32 * 1024 * 1024, description="bytes fetched per batch at most")
    imap_timeout: float = 60.0
    imap_retries: int = Field(5, description="reconnects after a lost connection, per poll")
    imap_backoff: float = Field(1.0, description="first reconnect delay in seconds; doubles")

    # SMTP journaling sink (ingest/smtp.py)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_hostname: str = Field("", description="name announced in the greeting; empty: FQDN")
    smtp_max_recipients: int = 1000
    smtp_allowed_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="client networks allowed to deliver (journaling sources); others get 550",
    )
    smtp_tls_cert: Path | None = Field(None, description="PEM certificate chain for STARTTLS")
    smtp_tls_key: Path | None = Field(None, description="PEM private key for STARTTLS")
    smtp_require_tls: bool = Field(False, description="refuse MAIL before STARTTLS")
    smtp_auth_user: str = Field("", description="when set, clients must AUTH as this user")
    smtp_auth_password: str = ""
    smtp_unwrap_journal: bool = Field(True, description="also archive what journal reports hold")
    smtp_journal_senders: list[str] = Field(
        default_factory=list,
        description="envelope senders (MAIL FROM; <> for the null sender) whose journal reports "
        "are unwrapped; with SMTP_JOURNAL_NETWORKS both must match; neither set: none are",
    )
    smtp_journal_networks: list[str] = Field(
        default_factory=list,
        description="client networks (CIDRs) whose journal reports are unwrapped",
    )
    smtp_spool_committers: int = Field(
        1,
        description="spool segments the SMTP sink writes at once (see archiver/pipeline/spool.py)",
    )
    smtp_spool_linger: float = Field(
        0.02, description="seconds a spool segment waits for more deliveries before it is written"
    )
    smtp_batch_window: float = Field(
        0.3, description="seconds the sink gathers spooled messages into one filing task"
    )
    smtp_batch_size: int = Field(200, description="messages per filing task at most")
    smtp_hold_filing_back_to_back: float = Field(
        0.01,
        description="while MTAs send their next message within this many seconds of the 250 "
        "(they have a queue for the sink), filing tasks are held back: accepting comes first "
        "(0: never hold)",
    )
    smtp_hold_filing_max: float = Field(
        60.0, description="seconds filing tasks are held back at most (below RECONCILE_MIN_AGE)"
    )
    smtp_inline_bytes: int = Field(
        2 << 20,
        description="spool bytes a filing task carries itself (saves the worker reading them "
        "back from S3); more are read from S3",
    )
    smtp_refresh_on_file: bool = Field(
        True,
        description="refresh the index once a filing task is done: SMTP mail is searchable at "
        "once, not after the index's refresh interval",
    )
    worker_nice: int = Field(
        10,
        description="CPU priority (nice) of `mailvault worker`: on a shared machine the SMTP "
        "sink, which MTAs wait on, comes first and indexing catches up",
    )
    celery_queue: str = Field("celery", description="queue the pipeline tasks are sent to")
    pipeline_max_retries: int = Field(
        12, description="retries of a pipeline task on a transient error before it is recorded"
    )
    pipeline_retry_backoff: int = Field(
        2, description="seconds of the first retry delay; doubles (with jitter) up to 600"
    )
    reconcile_interval: float = Field(300.0, description="seconds between scheduled reconciles")
    reconcile_min_age: float = Field(
        120.0, description="seconds a spool segment is left to the Celery task first"
    )

    # tagging (archiver/tagging/)
    tagging_enabled: bool = Field(True, description="tag and pick topics of new mail on indexing")
    tagging_batch_size: int = Field(500, description="messages per batch of a rule preview/apply")
    tagging_regex_timeout: float = Field(
        1.0, gt=0, description="seconds a rule's regexes may run on a message before it is skipped"
    )
    topics_count: int = Field(8, description="keywords kept per message in 'topics'")
    topics_stop_words: Path | None = Field(
        None, description="extra stop words for topics, one per line (added to the built-in list)"
    )

    # audit log (archiver/audit/)
    audit_retention_days: int = Field(
        180, ge=1, description="days each sealed audit segment is kept under Object Lock"
    )
    audit_retention_mode: Literal["GOVERNANCE", "COMPLIANCE"] = Field(
        "GOVERNANCE",
        description="Object Lock mode of sealed segments; COMPLIANCE: not even the bucket's "
        "owner can delete them before the date",
    )
    audit_seal_every: int = Field(
        1000, ge=0, description="records per sealed segment (0: only on `mailvault audit seal`)"
    )
    audit_index: str = Field(
        "", description="Elasticsearch alias of the audit log; empty: <es_index>-audit"
    )

    # retention and legal holds (archiver/retention/, archiver/holds/)
    retention_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = Field(
        "GOVERNANCE",
        description="Object Lock mode of retained messages and tombstones; COMPLIANCE: not "
        "even the bucket's owner can shorten or delete before the date",
    )
    retention_lock_horizon_days: int = Field(
        30,
        ge=1,
        description="days ahead that mail kept forever is locked in storage, renewed as it runs"
        " down (a lock that never ends would make a later, shorter policy impossible)",
    )
    retention_approval_limit: int = Field(
        1000,
        ge=0,
        description="a disposition run deleting more messages waits for a second person",
    )
    retention_tombstone_days: int = Field(
        3650, ge=1, description="days a disposed message's tombstone stays under Object Lock"
    )
    retention_run_interval: float = Field(
        86400.0, gt=0, description="seconds between the beat's disposition runs (daily)"
    )
    retention_sweep_interval: float = Field(
        600.0,
        gt=0,
        description="seconds between the beat's sweeps deciding mail left pending",
    )

    # evidence exports (archiver/exports/, archiver/adapters/s3.py S3PackageStore)
    export_bucket: str = Field(
        "",
        description="bucket of export packages and build work files; a plain one (no Object "
        "Lock: packages expire and are deleted); empty: <s3_bucket>-exports",
    )
    export_part_size: int = Field(
        2 * 1024**3,
        ge=4096,  # tiny parts only make sense in tests; a real package wants hundreds of MB
        description="bytes a package part (one zip) stays below; a file is never split",
    )
    export_expiry_days: int = Field(
        15, ge=1, description="days a built package can be downloaded before it is deleted"
    )
    export_lease_seconds: int = Field(
        300,
        ge=1,  # short leases let tests take a crashed build over without waiting
        description="seconds a builder holds an export job without renewing; then another "
        "builder may take it over (the first one crashed)",
    )
    export_maintain_interval: float = Field(
        60.0,
        gt=0,
        description="seconds between the beat's export upkeep: expired packages deleted, "
        "builds nobody holds any more handed to a worker",
    )
    export_signing_key_file: Path | None = Field(
        None,
        description="the Ed25519 key that signs manifests (raw 32 bytes or PEM PKCS#8); "
        "unset: one generated once and kept in the archive's JSON store",
    )

    # LDAP / Active Directory sign-in (archiver/adapters/ldap.py); empty LDAP_URL: not used
    ldap_url: str = Field("", description="ldap://host[:port] or ldaps://host[:port]")
    ldap_start_tls: bool = Field(False, description="upgrade an ldap:// connection with StartTLS")
    ldap_ca_file: Path | None = Field(
        None, description="PEM CA certificates for ldaps/StartTLS (default: the system's)"
    )
    ldap_bind_dn: str = Field("", description="account that searches for users; empty: anonymous")
    ldap_bind_password: SecretStr = SecretStr("")
    ldap_user_base: str = Field("", description="where users are searched (subtree)")
    ldap_user_filter: str = Field(
        "(uid={username})", description="AD: (sAMAccountName={username}); the name is escaped"
    )
    ldap_username_attribute: str = Field("uid", description="AD: sAMAccountName")
    ldap_display_name_attribute: str = "displayName"
    ldap_email_attribute: str = "mail"
    ldap_group_base: str = Field(
        "", description="where groups are searched; empty: the user's memberOf attribute"
    )
    ldap_group_filter: str = Field(
        "(member={dn})",
        description="groups of the user ({dn} is escaped); AD nested groups: "
        "(member:1.2.840.113556.1.4.1941:={dn})",
    )
    ldap_role_map: dict[str, list[str]] = Field(
        default_factory=dict, description='JSON: {"<group DN>": ["<role>", ...]}'
    )
    ldap_department_map: dict[str, list[str]] = Field(
        default_factory=dict, description='JSON: {"<group DN>": ["<department>", ...]}'
    )
    ldap_timeout: float = Field(
        5.0, gt=0, description="seconds to connect and for each answer; then BackendUnavailable"
    )

    # browser sessions and API tokens (archiver/access/sessions.py, tokens.py, search_api/auth.py)
    session_idle_minutes: float = Field(
        30, gt=0, description="a session unused this long ends; every request refreshes it"
    )
    session_absolute_hours: float = Field(
        12, gt=0, description="a session ends this long after sign-in, however much it is used"
    )
    session_key_prefix: str = Field("mailvault:", description="prefix of the Redis keys")
    session_cookie_name: str = "mailvault_session"
    session_cookie_secure: bool = Field(
        True, description="send the session cookie over HTTPS only (off only for local HTTP)"
    )
    session_cookie_samesite: Literal["lax", "strict"] = Field(
        "lax",
        description="lax: links to the archive from mail or chat open signed in; strict: they "
        "do not (the CSRF token guards state changes either way)",
    )
    api_token_max_days: int = Field(365, gt=0, description="longest lifetime of an API token")

    # users and sign-in (archiver/access/users.py)
    password_min_length: int = Field(
        12, ge=8, description="shortest password accepted (a passphrase is welcome: up to 1024)"
    )
    argon2_time_cost: int = Field(3, ge=1, description="Argon2id passes (RFC 9106 default)")
    argon2_memory_kib: int = Field(65536, ge=8, description="Argon2id memory per hash, KiB")
    argon2_parallelism: int = Field(4, ge=1, description="Argon2id lanes")
    signin_account_max_failures: int = Field(
        5, ge=1, description="failed sign-ins of one account within the window that lock it"
    )
    signin_account_window_seconds: float = Field(900.0, gt=0)
    signin_account_lockout_seconds: float = Field(
        900.0, gt=0, description="how long a locked account stays locked (or until unlocked)"
    )
    signin_address_max_failures: int = Field(
        20,
        ge=1,
        description="failed sign-ins from one client address within the window that "
        "block the address",
    )
    signin_address_window_seconds: float = Field(900.0, gt=0)
    signin_address_block_seconds: float = Field(900.0, gt=0)
    principal_cache_seconds: float = Field(
        2.0,
        ge=0,
        le=10,
        description="how long an API process reuses a user's roles (and a valid API token) before "
        "reading them again: "
        "a disabled user, a removed role or a revoked token stops working within this "
        "(0: read at every request)",
    )

    # the Status page and /metrics (archiver/status.py, search_api/metrics.py)
    metrics_access: Literal["token", "open"] = Field(
        "token",
        description="who may scrape /metrics: token: a session or API token (Authorization: "
        "Bearer mv_...) with the manage_config permission; open: anyone who can reach it (only "
        "behind a firewall or a proxy that limits it: the figures are counts, never mail)",
    )
    status_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="how long the status figures are reused (several scrapers and open Status "
        "pages ask the backends once)",
    )
    status_disk_paths: list[str] = Field(
        default_factory=list,
        description="local directories whose file systems' free space is reported (e.g. the "
        "Elasticsearch and SeaweedFS data directories on this host)",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
