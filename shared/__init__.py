"""Dev8 backend core: domain models, lifecycle rules, settings, errors, ports and adapters."""
