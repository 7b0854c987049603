"""A miniature FM-FL pipeline that produces the `reading-tutor` example deployment (two twins).

`python examples/build.py reading-tutor` runs it: a real pretrained foundation model (stories260K)
generates, labels and initialises; clients train with FedAvg in torch; the artifacts an auditor
needs (checkpoints, data dumps, logs, a manifest and the ground truth) are written per twin.
"""
