"""Remediation: commands that write fixed copies of a deployment's files, never over the inputs."""
