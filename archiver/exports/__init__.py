"""Evidence exports: a package of archived mail that proves its own integrity offline.

`model` (requests, jobs, the items of a package), `layout` (file and folder names), `selection`
(what a request covers, through the requester's scope), `metadata` (metadata.csv and the DAT
load file), `mbox` (mboxrd), `pdf` (renderings for reviewers), `signing` (Ed25519), `verifier`
(the standalone verifier shipped in every package), `builder` (streams parts into the exports
bucket, resumable), `service` (create, status, cancel, download with custody, expiry).
"""
