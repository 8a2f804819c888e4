"""PyTorch modules for tests/test_torch.py, importable by reference from a fresh process."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """A small multilayer perceptron."""

    def __init__(self, n_in: int = 3, hidden: int = 16, n_out: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
