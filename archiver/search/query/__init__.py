"""The query language: its tree, the parser that builds it, the one translation to Elasticsearch."""
