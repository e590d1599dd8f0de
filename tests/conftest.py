"""Shared test settings: deterministic torch, few threads (CI has 2 cores)."""

import os

import torch

torch.set_num_threads(1)
os.environ.setdefault("KANIR_TEST", "1")


import pytest  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _nothing_written_into_the_checkout(request):
    """No test (and nothing kanir does in one) may drop files into the checkout or the working
    directory, pykan's habit; the test that does is named."""
    cwd = os.getcwd()
    before = set(os.listdir(_ROOT)), set(os.listdir(cwd))
    yield
    if os.getcwd() != cwd:
        return
    new = sorted((set(os.listdir(_ROOT)) - before[0]) | (set(os.listdir(cwd)) - before[1]))
    new = [n for n in new if n not in (".pytest_cache", ".hypothesis", "__pycache__")]
    assert not new, (f"{request.node.nodeid} (or a test running beside it under xdist) wrote "
                     f"{new} into {cwd}")
