"""Finding mail: the search service, the query language (query/), reading one message,
conversations and saved searches."""
