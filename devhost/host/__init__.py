"""A local Azure Functions host for any Python v2 programming-model app: HTTP triggers, timer
triggers and Durable Functions (orchestrations replayed by the real SDK). Knows nothing of Dev8."""
