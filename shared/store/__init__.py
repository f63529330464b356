"""Table Storage adapter."""
