"""The Elasticsearch adapter against the real cluster: a cluster that cannot be reached is
transient (retried), a request it refuses is permanent."""

from __future__ import annotations

import pytest

from archiver.adapters.elastic import ElasticIndex
from archiver.errors import BackendFailed, BackendUnavailable, InvalidQuery
from archiver.settings import Settings
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
