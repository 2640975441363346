"""The only modules that talk to backends: s3 (RawStore, JsonStore), elastic (SearchIndex), imap
(the Mailbox port over imaplib). Everything else reaches them through archiver/ports.py."""
