"""Compute backends: Azure Container Instances, local code-server processes, and a simulator."""
