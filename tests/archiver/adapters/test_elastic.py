"""The Elasticsearch adapter against the real cluster: a cluster that cannot be reached is
transient (retried), a request it refuses is permanent."""

from __future__ import annotations

import pytest

from archiver.adapters.elastic import ElasticIndex
from archiver.errors import BackendFailed, BackendUnavailable, InvalidQuery
from archiver.settings import Settings
from bench.cleanup import drop_index
from tests.support.postfix import free_port

pytestmark = pytest.mark.services


def test_elasticsearch_on_a_closed_port_is_unavailable(settings: Settings) -> None:
    dead = ElasticIndex(settings.model_copy(update={"es_url": f"http://127.0.0.1:{free_port()}"}))
    with pytest.raises(BackendUnavailable, match="elasticsearch unavailable: ConnectionError"):
        dead.get("0" * 64)
    with pytest.raises(BackendUnavailable):  # a generator: raised while iterated
        list(dead.scan({"match_all": {}}, ["subject"]))


def test_a_request_elasticsearch_answers_400_to_is_permanent(
    settings: Settings, backends: None
) -> None:
    index = ElasticIndex(settings)
    with pytest.raises(BackendFailed, match=r"elasticsearch failed .*400") as err:
        list(index.scan({"no_such_query": {}}, ["subject"]))
    assert err.value.backend == "elasticsearch"
    # A search is a user's query: the refusal is answered as an invalid query, with ES's reason.
    with pytest.raises(InvalidQuery, match=r"cannot run this query: .*no_such_query"):
        index.search({"query": {"no_such_query": {}}})


def test_a_missing_index_is_permanent(settings: Settings) -> None:
    missing = ElasticIndex(settings.model_copy(update={"es_index": f"{settings.es_index}-none"}))
    with pytest.raises(BackendFailed, match="index_not_found_exception"):
        missing.search({"query": {"match_all": {}}})


def test_an_unparsable_url_is_permanent(settings: Settings) -> None:
    with pytest.raises(BackendFailed, match="elasticsearch failed"):
        ElasticIndex(settings.model_copy(update={"es_url": "no scheme here"}))


def _index_setting(index: ElasticIndex, name: str) -> list[str]:
    found = index.client.indices.get_settings(index=index.alias, name=f"index.{name}")
    return [body["settings"]["index"][name] for body in found.values()]


def test_a_paused_refresh_is_resumed_and_a_crashed_pause_undone_at_start(
    settings: Settings,
) -> None:
    own = settings.model_copy(update={"es_index": f"{settings.es_index}-refresh"})
    index = ElasticIndex(own)
    try:
        index.ensure_ready()
        index.pause_refresh()
        assert _index_setting(index, "refresh_interval") == ["-1"]
        index.create_many([{"id": "a" * 64, "subject": "paused"}])
        assert index.search({"query": {"match_all": {}}})["hits"]["total"]["value"] == 0
        index.resume_refresh()  # back to the template's interval, searchable at once
        assert _index_setting(index, "refresh_interval") == ["1s"]
        assert index.search({"query": {"match_all": {}}})["hits"]["total"]["value"] == 1
        # an import that died paused: the next run's ensure_ready turns refresh back on
        index.pause_refresh()
        ElasticIndex(own).ensure_ready()
        assert _index_setting(index, "refresh_interval") == ["1s"]
    finally:
        drop_index(index.client, own.es_index)


def test_shards_and_replicas_come_from_the_settings(settings: Settings) -> None:
    own = settings.model_copy(
        update={"es_index": f"{settings.es_index}-layout", "es_shards": 2, "es_replicas": 0}
    )
    index = ElasticIndex(own)
    try:
        index.ensure_ready()
        assert _index_setting(index, "number_of_shards") == ["2"]
        # replicas can change on the live index (a cluster grows); shards apply to new ones
        ElasticIndex(own.model_copy(update={"es_replicas": 1})).ensure_ready()
        assert _index_setting(index, "number_of_replicas") == ["1"]
        template = index.client.indices.get_index_template(name=f"{own.es_index}-template")
        layout = template["index_templates"][0]["index_template"]["template"]["settings"]
        assert layout["index"]["number_of_replicas"] == "1"
    finally:
        drop_index(index.client, own.es_index)
