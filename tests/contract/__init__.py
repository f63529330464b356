"""One contract, every implementation: the fakes the fast tests use keep what the adapters keep."""
