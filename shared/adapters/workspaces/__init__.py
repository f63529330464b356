"""Workspace storage: Azure Files shares, or directories on this machine."""
