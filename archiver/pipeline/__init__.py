"""From bytes to the index: the archiver (store, parse, tokenize, tag, index), index documents,
the SMTP spool, the reconciler that files what the fast path left, and the failure log."""
