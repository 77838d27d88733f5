"""Who may see what on a worker: identities (OpenID Connect bearer tokens, static machine
tokens) and their scopes (finess, ej, region, national) read against the registry."""
