"""The only modules that talk to backends: s3 (RawStore) and elastic (SearchIndex)."""
