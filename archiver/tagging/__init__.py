"""Tagging: hierarchical tags with provenance, rules, the department directory and topics.

model (tags, events, state) → rules (conditions, validation) and directory → engine (one
evaluation function) → apply (preview/apply over the archive) → service (use cases, the pipeline
hook); store keeps rules, tags, the directory and job progress in the archive's backends.
"""
