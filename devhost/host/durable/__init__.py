"""Building blocks of the local Durable Functions engine (see devhost.host.durable.engine)."""
