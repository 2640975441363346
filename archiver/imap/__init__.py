"""IMAP polling: accounts, the incremental idempotent poller, modified UTF-7 folder names."""
