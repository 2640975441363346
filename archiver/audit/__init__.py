"""The tamper-evident audit log: hash-chained records, sealed segments under Object Lock."""
