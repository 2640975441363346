"""The web UI: server-rendered page shells, their scripts, translations and the safe mail frame."""
