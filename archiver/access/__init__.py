"""Who may see what: users, roles and permissions, sign-in providers, sessions and tokens, scope."""
