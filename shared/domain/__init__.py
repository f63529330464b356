"""The domain: environment records, lifecycle rules, operations, the catalog, quotas and the sweeps'
decisions. Pure: no I/O, no Azure SDK, no os.environ; imports the standard library, pydantic and
shared.errors only."""
