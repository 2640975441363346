"""SearchIndex on Elasticsearch: the only module that talks to it.

Works on the integ-test distribution (no analysis-common, reindex or painless): the template uses
the core whitespace analyzer, and updates are client-side partial updates.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import wraps
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import orjson
from elasticsearch import (
    ApiError,
    BadRequestError,
    ConnectionError,
    ConnectionTimeout,
    Elasticsearch,
    NotFoundError,
    TransportError,
)
from elasticsearch.exceptions import SSLError
from elasticsearch.serializer import JsonSerializer, NdjsonSerializer

from archiver.errors import BackendFailed, BackendUnavailable, InvalidQuery
from archiver.models import IndexStorage
from archiver.ports import VERSION_TOKEN, Document
from archiver.settings import Settings

# package data (pyproject.toml), so an installed wheel finds it too
log = logging.getLogger(__name__)
TEMPLATE = resources.files(__package__).joinpath("index_templates", "messages.json")

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.contextmanager
def _es_errors() -> Iterator[None]:
    """Only the network, timeouts and the cluster's own trouble (5xx, 429 rejections) are
    transient; any other answer (400 for a request it cannot accept, 401/403, a missing index)
    and a TLS or serialization error is permanent."""
    try:
        yield
    except (ConnectionError, ConnectionTimeout) as exc:  # refused, reset, timed out
        kind = BackendFailed if isinstance(exc, SSLError) else BackendUnavailable
        raise kind("elasticsearch", f"{type(exc).__name__}: {exc}") from exc
    except TransportError as exc:
        raise BackendFailed("elasticsearch", f"{type(exc).__name__}: {exc}") from exc
    except ApiError as exc:
        status = exc.meta.status
        kind = BackendUnavailable if status >= 500 or status in (408, 429) else BackendFailed
        raise kind("elasticsearch", str(exc)) from exc


def _translate_errors(fn: Callable[P, R]) -> Callable[P, R]:
    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _es_errors():
            return fn(*args, **kwargs)

    return wrapper


def _created(index: Mapping[str, Any]) -> int:
    return int(index["settings"]["index"]["creation_date"])


def _reason(exc: ApiError) -> str:
    """The innermost reason Elasticsearch gives for refusing a request."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    while isinstance(error, dict) and isinstance(error.get("caused_by"), dict):
        error = error["caused_by"]
    return str(error.get("reason")) if isinstance(error, dict) else str(exc)


class _FastJson(JsonSerializer):
    """orjson: the bulk bodies of an import are its largest JSON (~20 KB a message) and the
    standard library's encoder took ~5% of the importing process. Text orjson refuses (a lone
    surrogate) goes the standard library's way, as before."""

    def json_dumps(self, data: Any) -> bytes:
        try:
            return orjson.dumps(data, default=self.default)
        except (orjson.JSONEncodeError, TypeError):
            return super().json_dumps(data)

    def json_loads(self, data: bytes) -> Any:
        return orjson.loads(data)


class _FastNdjson(_FastJson, NdjsonSerializer):
    mimetype = NdjsonSerializer.mimetype


# the client derives its compatibility-mode (vnd.elasticsearch+...) serializers from these
SERIALIZERS = {_FastJson.mimetype: _FastJson(), _FastNdjson.mimetype: _FastNdjson()}


def load_template() -> dict[str, Any]:
    template: dict[str, Any] = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    template.pop("_comment", None)
    # an index remembers the layout it was built with (or last took in full)
    template["template"]["mappings"]["_meta"] = {"layout": int(template["version"])}
    return template


REFRESH_OFF = "-1"


class ElasticIndex:
    def __init__(self, settings: Settings) -> None:
        self.alias = settings.es_index
        # the template's settings with the deployment's shard layout (a cluster of several
        # nodes wants several shards and a replica; this one machine, one shard and none)
        self.index_settings: dict[str, Any] = {
            **load_template()["template"]["settings"],
            "number_of_shards": settings.es_shards,
            "number_of_replicas": settings.es_replicas,
        }
        try:
            self.client = Elasticsearch(
                settings.es_url,
                request_timeout=settings.es_request_timeout,
                retry_on_timeout=True,
                max_retries=2,
                serializers=SERIALIZERS,
            )
        except ValueError as exc:  # a URL it cannot parse
            raise BackendFailed("elasticsearch", f"{type(exc).__name__}: {exc}") from exc

    @_translate_errors
    def ensure_ready(self) -> None:
        """Install the template if missing or older, and the first index behind the alias; an
        index built with an older layout takes the new one where it can (new fields)."""
        template = load_template()
        version = int(template["version"])
        # only this alias's own versioned indices, never another alias that shares the prefix
        template["index_patterns"] = [f"{self.alias}-v*"]
        template["template"]["settings"] = self.index_settings
        try:
            found = self.client.indices.get_index_template(name=self._template_name())
            installed = found["index_templates"][0]["index_template"]
            current = (installed.get("version"), self._layout(installed["template"]))
        except NotFoundError:
            current = None
        if current != (version, self._layout(template["template"])):
            self.client.indices.put_index_template(name=self._template_name(), **template)
        if self.client.indices.exists_alias(name=self.alias):
            if self.layout() < version:
                self._take_layout(template["template"]["mappings"], version)
        else:
            try:
                self.client.indices.create(
                    index=f"{self.alias}-v{version}",
                    aliases={self.alias: {"is_write_index": True}},
                )
            except ApiError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise
        self._restore_index_settings()

    def _take_layout(self, mappings: Mapping[str, Any], version: int) -> None:
        try:
            self.client.indices.put_mapping(index=self.alias, **mappings)
        except BadRequestError as exc:
            # a change an existing index cannot take (how a field is indexed): the index goes
            # on answering as it was built until `mailvault reindex` builds one anew
            log.warning(
                "index layout is older than the template's",
                extra={
                    "alias": self.alias,
                    "layout": self.layout(),
                    "template_layout": version,
                    "reason": _reason(exc),
                    "fix": "mailvault reindex",
                },
            )

    @_translate_errors
    def layout(self) -> int:
        """The oldest layout among the indices behind the alias (0: from before layouts were
        recorded)."""
        found = self.client.indices.get_mapping(index=self.alias)
        return min(int(m["mappings"].get("_meta", {}).get("layout", 0)) for m in found.values())

    # -- generations: rebuilding the index behind the alias --------------------------------

    def _behind_alias(self) -> list[str]:
        found = self.client.options(ignore_status=404).indices.get_alias(name=self.alias)
        return sorted(found.keys()) if "error" not in found else []

    @_translate_errors
    def new_generation(self) -> ElasticIndex:
        """An index with the template's layout, not behind the alias, to be filled and then
        promoted; one left unpromoted by an interrupted rebuild is taken up again."""
        self.ensure_ready()  # the current template, whatever the alias's index has
        version = int(load_template()["version"])
        prefix = f"{self.alias}-v{version}-rebuild-"
        started = self._started_generations(prefix)
        name = started[-1] if started else f"{prefix}{datetime.now(UTC):%Y%m%d%H%M%S%f}"
        if not started:
            self.client.indices.create(index=name)  # the template's settings and mappings
        generation = copy.copy(self)
        generation.alias = name
        generation.pause_refresh()
        return generation

    def _started_generations(self, prefix: str) -> list[str]:
        """Rebuilds begun after the live index was made and not promoted; an older one is a
        generation a promote replaced and a crash kept from being retired, never to be reused."""
        found = self.client.options(ignore_status=404).indices.get(index=f"{prefix}*")
        if "error" in found:
            return []
        live = self.client.indices.get(index=self.alias)
        newest_live = max(_created(i) for i in live.values())
        return sorted(n for n, i in found.items() if n not in live and _created(i) > newest_live)

    @_translate_errors
    def promote(self, generation: ElasticIndex) -> ElasticIndex | None:
        """Put the generation behind the alias in one step; what was there is returned, kept
        until retired (what changed on it in the last moments can still be read)."""
        generation.resume_refresh()
        old = [name for name in self._behind_alias() if name != generation.alias]
        actions: list[dict[str, Any]] = [
            {"remove": {"index": name, "alias": self.alias}} for name in old
        ]
        actions.append(
            {"add": {"index": generation.alias, "alias": self.alias, "is_write_index": True}}
        )
        self.client.indices.update_aliases(actions=actions)
        if not old:
            return None
        previous = copy.copy(self)
        previous.alias = ",".join(old)  # Elasticsearch reads a comma-separated list of indices
        return previous

    @_translate_errors
    def retire(self, previous: ElasticIndex | None) -> None:
        """Drop an index `promote` replaced."""
        if previous is not None:
            self.client.indices.delete(index=previous.alias)

    def _template_name(self) -> str:
        return f"{self.alias}-template"

    @staticmethod
    def _layout(template: Mapping[str, Any]) -> tuple[str, str]:
        """Shards and replicas of a template body, as Elasticsearch returns them (strings,
        under "index" once installed)."""
        settings = template.get("settings", {})
        settings = settings.get("index", settings)
        return str(settings.get("number_of_shards")), str(settings.get("number_of_replicas"))

    def _restore_index_settings(self) -> None:
        """The replicas wanted (they can change on a live index; shards only for the next index
        version), and periodic refresh back on where an import that paused it never ended (a
        crash): see pause_refresh."""
        wanted = {
            "refresh_interval": str(self.index_settings["refresh_interval"]),
            "number_of_replicas": str(self.index_settings["number_of_replicas"]),
        }
        found = self.client.indices.get_settings(
            index=self.alias, name=["index.refresh_interval", "index.number_of_replicas"]
        )
        for name, body in found.items():
            current = body["settings"]["index"]
            changes = {k: v for k, v in wanted.items() if current.get(k, v) != v}
            if changes:
                self.client.indices.put_settings(index=name, settings={"index": changes})

    @_translate_errors
    def pause_refresh(self) -> None:
        """No periodic refresh until resume_refresh(): a large import then writes fewer, larger
        segments, and Elasticsearch merges less. Documents stay durable (the translog is
        untouched); they only become searchable at the resume. A run that dies paused is
        undone by the next ensure_ready() (every entry point calls it at start)."""
        self.client.indices.put_settings(
            index=self.alias, settings={"index": {"refresh_interval": REFRESH_OFF}}
        )

    @_translate_errors
    def resume_refresh(self) -> None:
        """Periodic refresh back to the template's interval, and one refresh now."""
        interval = str(self.index_settings["refresh_interval"])
        self.client.indices.put_settings(
            index=self.alias, settings={"index": {"refresh_interval": interval}}
        )
        self.client.indices.refresh(index=self.alias)

    @_translate_errors
    def create_many(self, docs: Sequence[Document]) -> dict[str, str | None]:
        if not docs:
            return {}
        operations: list[Mapping[str, Any]] = []
        for doc in docs:
            operations.append({"create": {"_index": self.alias, "_id": doc["id"]}})
            operations.append(doc)
        response = self.client.bulk(operations=operations)
        return {
            item["create"]["_id"]: self._item_status(item["create"]) for item in response["items"]
        }

    @staticmethod
    def _item_status(item: Mapping[str, Any], version_conflict: str = "exists") -> str | None:
        """None, or why the bulk item failed. ES reports both a create of an existing document
        and an update of a changed one as a version conflict: the caller says which it is."""
        status = int(item["status"])
        if status < 300:
            return None
        if status == 409:
            return version_conflict if "version_conflict" in str(item.get("error")) else "conflict"
        error = item.get("error", {})
        return f"{error.get('type', status)}: {error.get('reason', '')}"

    @_translate_errors
    def get_many(self, ids: Iterable[str], fields: Sequence[str]) -> dict[str, Document]:
        id_list = list(dict.fromkeys(ids))
        if not id_list:
            return {}
        response = self.client.mget(index=self.alias, ids=id_list, source_includes=list(fields))
        found: dict[str, Document] = {}
        for doc in response["docs"]:
            if doc.get("found"):
                source = dict(doc.get("_source", {}))
                source[VERSION_TOKEN] = f"{doc['_seq_no']}:{doc['_primary_term']}"
                found[doc["_id"]] = source
        return found

    @_translate_errors
    def update_many(self, updates: Mapping[str, Document]) -> dict[str, str | None]:
        if not updates:
            return {}
        operations: list[Mapping[str, Any]] = []
        for doc_id, partial in updates.items():
            body = dict(partial)
            action: dict[str, Any] = {"_index": self.alias, "_id": doc_id}
            token = body.pop(VERSION_TOKEN, None)
            if token:
                seq_no, primary_term = str(token).split(":")
                action["if_seq_no"] = int(seq_no)
                action["if_primary_term"] = int(primary_term)
            operations.append({"update": action})
            operations.append({"doc": body})
        response = self.client.bulk(operations=operations)
        return {
            item["update"]["_id"]: self._item_status(item["update"], "conflict")
            for item in response["items"]
        }

    @_translate_errors
    def delete_many(self, ids: Sequence[str]) -> dict[str, str | None]:
        if not ids:
            return {}
        response = self.client.bulk(
            operations=[{"delete": {"_index": self.alias, "_id": doc_id}} for doc_id in ids]
        )
        return {
            item["delete"]["_id"]: (
                None if item["delete"].get("status") in (200, 404) else str(item["delete"])
            )
            for item in response["items"]
        }

    @_translate_errors
    def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, list[str]]:
        wanted = sorted(set(message_ids))
        if not wanted:
            return {}
        response = self.client.search(
            index=self.alias,
            query={"terms": {"message_id": wanted}},
            source_includes=["message_id"],
            size=10_000,
        )
        found: dict[str, list[str]] = {}
        for hit in response["hits"]["hits"]:
            found.setdefault(hit["_source"]["message_id"], []).append(hit["_id"])
        return found

    @_translate_errors
    def get(self, doc_id: str) -> Document | None:
        try:
            response = self.client.get(index=self.alias, id=doc_id)
        except NotFoundError:
            return None
        source: Document = dict(response["_source"])
        return source

    @_translate_errors
    def open_pit(self, keep_alive: str = "5m") -> str:
        pit: str = self.client.open_point_in_time(index=self.alias, keep_alive=keep_alive)["id"]
        return pit

    @_translate_errors
    def close_pit(self, pit: str) -> None:
        with contextlib.suppress(NotFoundError):  # already expired
            self.client.close_point_in_time(id=pit)

    @_translate_errors
    def search(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        index = None if "pit" in body else self.alias  # a PIT names its own index
        try:
            response = self.client.search(index=index, **body)
        except NotFoundError as exc:
            if "pit" not in body:
                raise
            raise InvalidQuery(
                "the cursor has expired (or was never issued): start again with cursor=*"
            ) from exc
        except BadRequestError as exc:
            # The query language is checked before this; a refusal left (a wildcard too complex
            # to run, too many clauses) is still the query's fault, not the server's.
            raise InvalidQuery(f"Elasticsearch cannot run this query: {_reason(exc)}") from exc
        result: Mapping[str, Any] = response.body
        return result

    def scan(
        self, query: Mapping[str, Any], fields: Sequence[str], batch_size: int = 1000
    ) -> Iterator[list[Document]]:
        """Every matching document, in batches, from one point in time (stable while the index
        changes underneath). Each document carries "id" and "_version_token"."""
        # a generator: the errors arise while it is iterated, not when it is made
        with _es_errors():
            yield from self._scan(query, fields, batch_size)

    def _scan(
        self, query: Mapping[str, Any], fields: Sequence[str], batch_size: int
    ) -> Iterator[list[Document]]:
        pit = self.client.open_point_in_time(index=self.alias, keep_alive="5m")["id"]
        try:
            after: list[Any] | None = None
            while True:
                response = self.client.search(
                    query=dict(query),
                    pit={"id": pit, "keep_alive": "5m"},
                    size=batch_size,
                    sort=["_shard_doc"],
                    search_after=after,
                    source_includes=list(fields),
                    seq_no_primary_term=True,
                    track_total_hits=False,
                )
                hits = response["hits"]["hits"]
                if not hits:
                    return
                pit = response.get("pit_id", pit)
                yield [
                    {
                        **h["_source"],
                        "id": h["_id"],
                        VERSION_TOKEN: f"{h['_seq_no']}:{h['_primary_term']}",
                    }
                    for h in hits
                ]
                after = hits[-1]["sort"]
        finally:
            self.client.close_point_in_time(id=pit)

    @_translate_errors
    def refresh(self) -> None:
        self.client.indices.refresh(index=self.alias)

    @_translate_errors
    def storage(self) -> IndexStorage:
        client = self.client.options(request_timeout=5)
        stats = client.indices.stats(index=self.alias, metric="docs,store")["_all"]
        nodes = client.nodes.stats(node_id="data:true", metric="fs")["nodes"].values()
        totals = [n["fs"]["total"] for n in nodes if "total" in n.get("fs", {})]
        return IndexStorage(
            documents=stats["primaries"]["docs"]["count"],
            store_bytes=stats["total"]["store"]["size_in_bytes"],
            fs_total_bytes=sum(t["total_in_bytes"] for t in totals) if totals else None,
            fs_available_bytes=sum(t["available_in_bytes"] for t in totals) if totals else None,
        )

    def health(self) -> dict[str, Any]:
        try:
            client = self.client.options(request_timeout=5)
            health = client.cluster.health()
            # not info(): the integ-test distribution has no root endpoint
            nodes = client.nodes.info(node_id="_local", metric="_none")["nodes"]
            version = next(iter(nodes.values()))["version"]
        except Exception as exc:
            return {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
        answer = {"status": health["status"], "version": version, "alias": self.alias}
        with contextlib.suppress(Exception):  # a missing index says so elsewhere
            template = int(load_template()["version"])
            answer["layout"] = f"{self.layout()} (template {template})"
        return answer


AUDIT_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "seq": {"type": "long"},
        "time": {"type": "date"},
        "actor": {"type": "keyword"},
        "actor_roles": {"type": "keyword"},
        "client": {"type": "keyword"},
        "action": {"type": "keyword"},
        "target": {"type": "keyword"},
        "outcome": {"type": "keyword"},
        "request_id": {"type": "keyword"},
        # kept whole (searchable by the fields above); the record in S3 is the evidence
        "details": {"type": "object", "enabled": False},
        "prev_hash": {"type": "keyword", "index": False},
        "hash": {"type": "keyword", "index": False},
    },
}


class ElasticAuditIndex:
    """The audit log's search copy: an index of its own behind `alias` (core field types
    only), rebuilt from S3 by AuditLog.reindex()."""

    def __init__(self, index: ElasticIndex, alias: str) -> None:
        self.client = index.client
        self.alias = alias

    @_translate_errors
    def ensure_ready(self) -> None:
        if self.client.indices.exists_alias(name=self.alias):
            self.client.indices.put_mapping(index=self.alias, **AUDIT_MAPPINGS)
            return
        try:
            self.client.indices.create(
                index=f"{self.alias}-v1",
                mappings=AUDIT_MAPPINGS,
                aliases={self.alias: {"is_write_index": True}},
            )
        except ApiError as exc:
            if exc.error != "resource_already_exists_exception":
                raise

    @_translate_errors
    def index_records(self, docs: Sequence[Document]) -> None:
        if not docs:
            return
        operations: list[Mapping[str, Any]] = []
        for doc in docs:
            operations.append({"index": {"_index": self.alias, "_id": str(doc["seq"])}})
            operations.append(doc)
        response = self.client.bulk(operations=operations)
        if response.get("errors"):
            failed = [i["index"] for i in response["items"] if i["index"].get("error")]
            raise BackendFailed(
                "elasticsearch", f"{len(failed)} audit records not indexed, e.g. {failed[0]}"
            )

    @_translate_errors
    def search(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        result: Mapping[str, Any] = self.client.search(index=self.alias, **body).body
        return result

    @_translate_errors
    def refresh(self) -> None:
        self.client.indices.refresh(index=self.alias)
