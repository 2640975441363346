"""Imported (preloaded) by the fork server the analyser processes fork from: the default
tokenizer is built there once, before any analyser forks, so they all share its dictionary's
~57 MB (copy-on-write, and jieba's dictionary is only read) instead of each loading its own."""

from archiver.text.tokenizer import get_tokenizer

get_tokenizer(None).load()
