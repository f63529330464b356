"""Table Storage: the environment records, their audit trail, the status index and the orphan ledger."""
