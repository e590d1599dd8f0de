"""Shared test settings: deterministic torch, few threads (CI has 2 cores)."""

import os

import torch

torch.set_num_threads(1)
os.environ.setdefault("KANIR_TEST", "1")
