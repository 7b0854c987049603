"""The learning task: a small torch classifier on per-client synthetic tabular data.

Client 0 is resource-abundant (10x the records of the others); the data of every client is drawn
from the same rule so the federation converges; partitions are seeded by their id, so a run is
reproducible.
"""

from __future__ import annotations

import torch

NUM_FEATURES = 8
BASE_RECORDS = 20
ABUNDANT_FACTOR = 10


def partition_size(partition_id: int, abundant_partition: int = 0) -> int:
    """Records held by a client: the abundant one holds ABUNDANT_FACTOR times the others."""
    factor = ABUNDANT_FACTOR if partition_id == abundant_partition else 1
    return BASE_RECORDS * factor


def load_partition(partition_id: int, abundant_partition: int = 0) -> tuple[torch.Tensor, ...]:
    """(features, labels) of one client."""
    gen = torch.Generator().manual_seed(1000 + partition_id)
    x = torch.randn(partition_size(partition_id, abundant_partition), NUM_FEATURES, generator=gen)
    w = torch.linspace(-1.0, 1.0, NUM_FEATURES)
    y = (x @ w > 0).long()
    return x, y


def make_model() -> torch.nn.Module:
    """The global model's architecture, with fixed initial weights."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(NUM_FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)
    )


def train(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float) -> float:
    """Full-batch SGD for `epochs` steps; returns the last loss."""
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return float(loss)


def evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(loss, accuracy) of `net` on (x, y)."""
    with torch.no_grad():
        logits = net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        accuracy = (logits.argmax(dim=1) == y).float().mean()
    return float(loss), float(accuracy)
