"""Adapters: the ports on Table Storage, Azure Container Instances, Azure Files, this machine."""
