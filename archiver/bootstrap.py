"""Composition root: the one place that wires the domain to the real adapters."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import timedelta
from functools import partial

import redis
from argon2 import PasswordHasher

from archiver.access.lockout import LockoutPolicy
from archiver.access.model import Clock, utc_now
from archiver.access.sessions import Sessions, SessionTimeouts
from archiver.access.signin import PrincipalCache, SignInService
from archiver.access.tokens import ApiTokens
from archiver.access.users import PasswordPolicy, UserDirectory
from archiver.adapters.elastic import ElasticAuditIndex, ElasticIndex
from archiver.adapters.imap import connect
from archiver.adapters.ldap import LdapConfig, LdapProvider
from archiver.adapters.local_disk import LocalDiskUsage
from archiver.adapters.redis_broker import RedisBroker
from archiver.adapters.redis_limits import RedisSignInLimits
from archiver.adapters.redis_sessions import RedisSessionStore
from archiver.adapters.s3 import (
    S3AuditStore,
    S3JsonStore,
    S3PackageStore,
    S3RawStore,
    S3RetentionStorage,
)
from archiver.audit.indexing import QueuedAuditIndex
from archiver.audit.log import AuditLog
from archiver.errors import UserNotFound
from archiver.exports.builder import ExportOptions, PackageBuilder
from archiver.exports.jobs import ExportJobs
from archiver.exports.service import ExportService
from archiver.exports.signing import ManifestSigner, load_or_create_key, signing_key_from_file
from archiver.holds.model import Hold
from archiver.holds.service import HoldService
from archiver.imap.accounts import load_accounts
from archiver.imap.sync import ImapPoller, PollSummary
from archiver.mime.attachments import ExtractLimits
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.failures import FailureLog
from archiver.pipeline.spool import decode_segment
from archiver.ports import IdentityProvider, JsonStore, SearchIndex, SessionStore
from archiver.retention.disposition import Disposition
from archiver.retention.evaluate import CriteriaQueries
from archiver.retention.service import RetentionOptions, RetentionService
from archiver.retention.state import StateStore
from archiver.search.query.to_es import Translator
from archiver.search.service import SearchService
from archiver.settings import Settings, get_settings
from archiver.status import StatusProbe
from archiver.tagging.keywords import read_stop_words
from archiver.tagging.service import TaggingOptions, TaggingService
from archiver.tagging.store import TaggingStore
from archiver.text.tokenizer import get_tokenizer, preload_tokenizer


def raw_store(settings: Settings | None = None) -> S3RawStore:
    return S3RawStore(settings or get_settings())


def json_store(settings: Settings | None = None) -> S3JsonStore:
    return S3JsonStore(raw_store(settings))


def search_index(settings: Settings | None = None) -> ElasticIndex:
    return ElasticIndex(settings or get_settings())


def sign_in_limits(settings: Settings) -> RedisSignInLimits:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3)
    # keyed by the archive's bucket: one Redis may serve several archives (and test sessions)
    return RedisSignInLimits(client, prefix=f"mailvault:{settings.s3_bucket}:signin:")


def user_directory(settings: Settings) -> UserDirectory:
    return UserDirectory(
        json_store(settings),
        sign_in_limits(settings),
        hasher=PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        ),
        password_policy=PasswordPolicy(min_length=settings.password_min_length),
        lockout=LockoutPolicy(
            account_max_failures=settings.signin_account_max_failures,
            account_window=timedelta(seconds=settings.signin_account_window_seconds),
            account_lockout=timedelta(seconds=settings.signin_account_lockout_seconds),
            address_max_failures=settings.signin_address_max_failures,
            address_window=timedelta(seconds=settings.signin_address_window_seconds),
            address_block=timedelta(seconds=settings.signin_address_block_seconds),
        ),
    )


# what the analyser processes run (archiver.pipeline.documents.analyse and its imports)
ANALYSER_MODULES = ("archiver.pipeline.documents", "archiver.text.tokenizer")


def analyser_pool(settings: Settings) -> Callable[[], Executor]:
    """A factory of process pools for parsing and segmenting (CPU-bound)."""
    # one analyser process is still worth having: the main process stores and indexes meanwhile
    workers = settings.import_workers or os.cpu_count() or 1
    # forkserver, not fork: the parent holds client connection pools and their locks. Not plain
    # spawn either: a spawned child re-imports the parent's main module (ingest.cli, and through
    # it every adapter: ~2 s of CPU and ~35 MB per child); the fork server imports only what
    # analysing needs, once, and each analyser forks from it ready.
    context = multiprocessing.get_context("forkserver")
    preload = list(ANALYSER_MODULES)
    # the default dictionary loaded once and shared, when there are analysers to share it
    # (with a user dictionary, each analyser loads its own)
    if settings.user_dict is None and workers > 1:
        preload.append("archiver.text.shared_tokenizer")
    context.set_forkserver_preload(preload)
    return partial(
        ProcessPoolExecutor,
        max_workers=workers,
        mp_context=context,
        initializer=preload_tokenizer,
        initargs=(settings.user_dict,),
    )


def search_service(settings: Settings, index: SearchIndex | None = None) -> SearchService:
    return SearchService(
        index or search_index(settings),
        get_tokenizer(settings.user_dict),
        settings.display_timezone,
    )


def status_probe(settings: Settings | None = None) -> StatusProbe:
    settings = settings or get_settings()
    index = search_index(settings)
    store = raw_store(settings)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=2)
    return StatusProbe(
        index=index,
        index_stats=index,
        raw_store=store,
        json_store=S3JsonStore(store),
        broker=RedisBroker(client),
        disks=LocalDiskUsage(),
        queue=settings.celery_queue,
        disk_paths=settings.status_disk_paths,
    )


def failure_log(settings: Settings) -> FailureLog:
    return FailureLog(json_store(settings))


def tagging(settings: Settings | None = None) -> TaggingService:
    settings = settings or get_settings()
    options = TaggingOptions(
        topics_count=settings.topics_count,
        stop_words=read_stop_words(settings.topics_stop_words),
        batch_size=settings.tagging_batch_size,
        user_dict=settings.user_dict,
        regex_timeout=settings.tagging_regex_timeout,
    )
    store = json_store(settings)
    return TaggingService(search_index(settings), TaggingStore(store), options, FailureLog(store))


def attachment_limits(settings: Settings) -> ExtractLimits | None:
    """The limits of attachment text extraction; None when it is turned off."""
    if not settings.extract_attachments:
        return None
    return ExtractLimits(
        max_bytes=settings.max_attachment_bytes,
        max_chars=settings.max_attachment_text_chars,
        timeout_s=settings.attachment_timeout_seconds,
        budget_s=settings.attachment_budget_seconds,
        max_pdf_pages=settings.max_pdf_pages,
    )


def archiver(settings: Settings | None = None, *, parallel: bool = False) -> Archiver:
    settings = settings or get_settings()
    return Archiver(
        raw_store(settings),
        search_index(settings),
        user_dict=settings.user_dict,
        max_body_chars=settings.max_body_chars,
        extract_limits=attachment_limits(settings),
        analysers=analyser_pool(settings) if parallel else None,
        store_threads=settings.store_threads,
        tagger=tagging(settings).tagger() if settings.tagging_enabled else None,
        retention=retention(settings),
    )


def audit_store(settings: Settings) -> S3AuditStore:
    return S3AuditStore(raw_store(settings), retention_mode=settings.audit_retention_mode)


def retention_storage(settings: Settings) -> S3RetentionStorage:
    return S3RetentionStorage(raw_store(settings), mode=settings.retention_lock_mode)


def package_store(settings: Settings | None = None) -> S3PackageStore:
    """The exports bucket: export_bucket, or <s3_bucket>-exports beside the archive's."""
    settings = settings or get_settings()
    bucket = settings.export_bucket or f"{settings.s3_bucket}-exports"
    return S3PackageStore(raw_store(settings), bucket)


def audit_index(settings: Settings) -> ElasticAuditIndex:
    return ElasticAuditIndex(
        search_index(settings), settings.audit_index or f"{settings.es_index}-audit"
    )


def audit_log(settings: Settings | None = None) -> AuditLog:
    settings = settings or get_settings()
    return AuditLog(
        audit_store(settings),
        QueuedAuditIndex(audit_index(settings)),
        seal_every=settings.audit_seal_every,
        retention_days=settings.audit_retention_days,
    )


def init_backends(settings: Settings | None = None) -> None:
    """Create the buckets (the archive's with Object Lock, the exports') and the index
    template and alias. Idempotent."""
    settings = settings or get_settings()
    raw_store(settings).ensure_ready()
    package_store(settings).ensure_ready()
    search_index(settings).ensure_ready()
    audit_index(settings).ensure_ready()


def imap_poller(
    settings: Settings, archiver: Archiver, *, batch_size: int | None = None
) -> ImapPoller:
    return ImapPoller(
        archiver,
        json_store(settings),
        partial(connect, timeout=settings.imap_timeout),
        batch_size=batch_size or settings.imap_batch_size,
        batch_bytes=settings.imap_batch_bytes,
        max_message_bytes=settings.max_message_bytes,
        retries=settings.imap_retries,
        backoff=settings.imap_backoff,
    )


def poll_imap_accounts(
    settings: Settings, account: str | None = None, *, batch_size: int | None = None
) -> list[PollSummary]:
    """Poll the configured accounts (or the one named) once each."""
    accounts = load_accounts(settings.imap_accounts).select(account)
    init_backends(settings)
    instance = archiver(settings)
    try:
        poller = imap_poller(settings, instance, batch_size=batch_size)
        return [poller.poll(a) for a in accounts]
    finally:
        instance.close()


def ldap_provider(settings: Settings) -> LdapProvider | None:
    """The LDAP / Active Directory sign-in provider; None when LDAP_URL is not set."""
    if not settings.ldap_url:
        return None
    return LdapProvider(
        LdapConfig(
            url=settings.ldap_url,
            start_tls=settings.ldap_start_tls,
            ca_file=settings.ldap_ca_file,
            bind_dn=settings.ldap_bind_dn,
            bind_password=settings.ldap_bind_password,
            user_base=settings.ldap_user_base,
            user_filter=settings.ldap_user_filter,
            username_attribute=settings.ldap_username_attribute,
            display_name_attribute=settings.ldap_display_name_attribute,
            email_attribute=settings.ldap_email_attribute,
            group_base=settings.ldap_group_base,
            group_filter=settings.ldap_group_filter,
            role_map=settings.ldap_role_map,
            department_map=settings.ldap_department_map,
            timeout=settings.ldap_timeout,
        )
    )


def sign_in_service(settings: Settings, directory: UserDirectory | None = None) -> SignInService:
    """Sign-in and principals for the API: local users, and LDAP when LDAP_URL is set."""
    ldap = ldap_provider(settings)
    providers: list[IdentityProvider] = [ldap] if ldap is not None else []
    return SignInService(
        directory or user_directory(settings),
        providers,
        cache=PrincipalCache(ttl=settings.principal_cache_seconds),
    )


def session_store(settings: Settings) -> RedisSessionStore:
    return RedisSessionStore.from_url(settings.redis_url, settings.session_key_prefix)


def sessions(
    settings: Settings, store: SessionStore | None = None, clock: Clock = utc_now
) -> Sessions:
    timeouts = SessionTimeouts(
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_absolute_hours),
    )
    return Sessions(store or session_store(settings), timeouts, clock)


def api_tokens(
    settings: Settings, store: JsonStore | None = None, clock: Clock = utc_now
) -> ApiTokens:
    return ApiTokens(
        store or json_store(settings),
        timedelta(days=settings.api_token_max_days),
        clock,
        cache_seconds=settings.principal_cache_seconds,
    )


def user_addresses(settings: Settings) -> Callable[[str], list[str]]:
    """An archive user's email addresses (a hold's user custodians), empty for an unknown one."""
    directory = user_directory(settings)

    def addresses(username: str) -> list[str]:
        try:
            user = directory.get(username)
        except UserNotFound:
            return []
        return [user.email] if user.email else []

    return addresses


def retention(settings: Settings | None = None) -> RetentionService:
    settings = settings or get_settings()
    translator = Translator(get_tokenizer(settings.user_dict), settings.display_timezone)
    return RetentionService(
        search_index(settings),
        retention_storage(settings),
        StateStore(json_store(settings)),
        CriteriaQueries(translator, settings.display_timezone, user_addresses(settings)),
        RetentionOptions(
            lock_horizon=timedelta(days=settings.retention_lock_horizon_days),
            approval_limit=settings.retention_approval_limit,
            batch_size=settings.tagging_batch_size,
            tombstone_days=settings.retention_tombstone_days,
        ),
    )


def holds(settings: Settings | None = None) -> HoldService:
    return HoldService(retention(settings))


def spooled_messages(settings: Settings) -> Callable[[], set[str]]:
    """The ids of messages in SMTP spool segments not yet filed (disposition leaves them)."""
    store = raw_store(settings)

    def spooled() -> set[str]:
        return {
            entry.sha256
            for segment in store.spooled()
            for entry in decode_segment(segment.key, store.read_spool(segment))
        }

    return spooled


def disposition(settings: Settings | None = None) -> Disposition:
    settings = settings or get_settings()
    return Disposition(retention(settings), audit_log(settings), spooled_messages(settings))


def export_signer(settings: Settings) -> ManifestSigner:
    """The archive's signing key: from a file when configured, otherwise the one kept in the
    JSON store (created once, by whichever process first needs it)."""
    if settings.export_signing_key_file is not None:
        return ManifestSigner(signing_key_from_file(settings.export_signing_key_file))
    return ManifestSigner(load_or_create_key(json_store(settings)))


def export_options(settings: Settings) -> ExportOptions:
    return ExportOptions(
        part_size=settings.export_part_size,
        expiry=timedelta(days=settings.export_expiry_days),
        lease=timedelta(seconds=settings.export_lease_seconds),
    )


def export_builder(settings: Settings | None = None) -> PackageBuilder:
    settings = settings or get_settings()
    service = retention(settings)

    def holds_of(matter_id: str) -> list[Hold]:
        matter = HoldService(service).matter(matter_id)
        return [h for h in matter.holds.values() if h.active]

    return PackageBuilder(
        ExportJobs(json_store(settings)),
        package_store(settings),
        raw_store(settings),
        search_index(settings),
        service.queries,
        holds_of,
        export_signer(settings),
        audit_log(settings),
        export_options(settings),
    )


def exports(
    settings: Settings | None = None, enqueue: Callable[[str], None] | None = None
) -> ExportService:
    settings = settings or get_settings()
    service = retention(settings)
    return ExportService(
        ExportJobs(json_store(settings)),
        package_store(settings),
        service.queries,
        HoldService(service).matter,
        audit_log(settings),
        export_options(settings),
        enqueue or (lambda export_id: None),
    )
