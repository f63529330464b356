"""The HTTP API: thin functions that authenticate, validate and call the core."""
