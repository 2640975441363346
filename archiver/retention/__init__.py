"""Retention: policies in the query language, their precedence, retain_until, disposition."""
