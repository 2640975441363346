"""Legal holds: matters, the holds they hold, and who and what each covers."""
