"""§4.2.1 anatomical modularity: pruning drops hidden nodes left without edges, and the example
script's staged schedules find the parity and majority modules with a KAN (seeds 0-2), fit the
MLPs too (the majority MLP stays less modular) and lower the connection cost of both."""

import sys

import pytest
import torch
from torch import nn

import kanir
from kanir.passes.prune import drop_dead_nodes, prune


def _x(n_in, n=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return 2 * torch.rand(n, n_in, generator=gen, dtype=torch.float64) - 1


def _value(g, x):
    with torch.no_grad():
        return kanir.KAN.from_graph(g, versions=False)(x)


def _mlp_with_constant_neuron():
    """y = tanh(x1) + tanh(x2) + 2*tanh(0.5): the third hidden neuron ignores the inputs."""
    mlp = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        mlp[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        mlp[0].bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
        mlp[2].weight.copy_(torch.tensor([[1.0, 1.0, 2.0]]))
        mlp[2].bias.zero_()
    return mlp


def test_prune_drops_a_hidden_node_left_without_edges():
    g = kanir.from_torch(_mlp_with_constant_neuron())
    x = _x(2)
    pruned = prune(g, x)  # the neuron's edges all score 0: without the fix width stays [2, 3, 1]
    assert pruned.width == [2, 2, 1]
    torch.testing.assert_close(_value(pruned, x), _value(g, x), rtol=0, atol=1e-12)
    model = kanir.KAN.from_graph(g, versions=False).prune(x=x)
    assert model.width_spec == [2, 2, 1]


def test_drop_dead_nodes_folds_a_constant_node_exactly():
    g = kanir.from_torch(_mlp_with_constant_neuron())
    g.set_edge(0, 0, 2, None)
    g.set_edge(0, 1, 2, None)  # node (1, 2) is constant 0.5, its edge gives 2*tanh(0.5)
    h = drop_dead_nodes(g)
    assert h.width == [2, 2, 1]
    x = _x(2)
    torch.testing.assert_close(_value(h, x), _value(g, x), rtol=0, atol=1e-12)
    assert abs(h.subnode(2, 0)["bias"] - 2 * torch.tanh(torch.tensor(0.5, dtype=torch.float64))
               .item()) < 1e-15


def test_drop_dead_nodes_removes_nodes_feeding_nothing_and_cascades():
    mlp = nn.Sequential(nn.Linear(2, 3), nn.SiLU(), nn.Linear(3, 2), nn.SiLU(),
                        nn.Linear(2, 1)).double()
    g = kanir.from_torch(mlp)
    g.set_edge(2, 1, 0, None)  # node (2, 1) feeds nothing: it goes, then node (1, 2) ...
    for j in range(2):
        if j != 1:
            g.set_edge(1, 2, j, None)  # ... whose only edge went into node (2, 1)
    h = drop_dead_nodes(g)
    assert h.width == [2, 2, 1, 1]
    x = _x(2)
    torch.testing.assert_close(_value(h, x), _value(g, x), rtol=0, atol=1e-12)
    assert drop_dead_nodes(h).same(h)


def _example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "science" / "anatomical_modularity.py"
    spec = importlib.util.spec_from_file_location("anatomical_modularity", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_tasks_are_the_papers():
    am = _example()
    p = am.parity_task()
    assert p["train_input"].shape == (1024, 10) and p["train_label"].shape == (1024, 5)
    x, y = p["train_input"], p["train_label"]
    assert torch.equal(y[:, 2], (x[:, 4] * x[:, 5] < 0).double())  # y_3 = x_5 XOR x_6
    m = am.majority_task()
    x, y = m["train_input"], m["train_label"]
    assert x.shape == (512, 9) and y.shape == (512, 1)
    row = torch.tensor([[1.0, 1, -1, -1, -1, 1, -1, 1, -1]])  # maj(+, -, -) = -
    assert float(y[(x == row).all(1)][0, 0]) == 0.0
    assert float(y.mean()) == 0.5


@pytest.mark.slow
def test_parity_kan_finds_the_five_modules(tmp_path):
    am = _example()
    torch.set_num_threads(1)
    result = am.run(am.QUICK, tmp_path, tasks=("parity",), log=lambda *_: None)
    kan, mlp = result["parity_kan"], result["parity_mlp"]
    assert kan["width"] == [10, 5, 5] and kan["modules"] == 5
    assert kan["input_groups"] == [[2 * j, 2 * j + 1] for j in range(5)]  # only its own inputs
    assert kan["rmse"] < 0.01
    assert kan["cost_before"] == pytest.approx(0.414, abs=0.01)
    assert kan["cost_after"] == pytest.approx(0.0707, abs=0.002)
    assert mlp["modules"] == 5 and mlp["rmse"] < 0.01 and mlp["width"] == [10, 10, 5]
    assert mlp["cost_before"] == pytest.approx(1.646, abs=0.05)
    assert mlp["cost_after"] == pytest.approx(0.284, abs=0.01)
    assert (tmp_path / "parity_kan_after_swap.gv").exists()


@pytest.mark.slow  # 30-40 s per seed on 2 shared cores, KANs only
@pytest.mark.parametrize("seed", [1, 2])
def test_kan_modules_on_other_seeds(tmp_path, seed):
    am = _example()
    torch.set_num_threads(1)
    s = am.Settings(seed=seed)
    for name, width, n_mod, cost_after in (("parity", [10, 5, 5], 5, 0.0707),
                                          ("majority", [9, 3, 1, 1], 3, 0.61)):
        make, kan_width, _ = am.TASKS[name]
        data = make()
        kan = am.train_kan(data, kan_width, s)
        row = am.analyse(name, "kan", kan, data, tmp_path, log=lambda *_: None)
        assert row["width"] == width and row["modules"] == n_mod, (name, row)
        assert row["rmse"] < 0.01
        assert row["cost_after"] == pytest.approx(cost_after, abs=0.01)


def test_modules_found_is_strict():
    am = _example()
    g = kanir.from_torch(nn.Sequential(nn.Linear(4, 2), nn.Tanh(), nn.Linear(2, 1)).double())
    for i in (2, 3):
        g.set_edge(0, i, 0, None)  # node 0 <- x0, x1 only; node 1 still <- all four
    assert am.modules_found(g, [[0, 1], [2, 3]])[0] == 0  # x0, x1 also feed the hub node 1
    for i in (0, 1):
        g.set_edge(0, i, 1, None)
    assert am.modules_found(g, [[0, 1], [2, 3]]) == (2, [[0, 1], [2, 3]])


@pytest.mark.slow
def test_majority_kan_shows_the_three_modules(tmp_path):
    am = _example()
    torch.set_num_threads(1)
    result = am.run(am.Settings(seed=0), tmp_path, tasks=("majority",), log=lambda *_: None)
    kan, mlp = result["majority_kan"], result["majority_mlp"]
    assert kan["width"] == [9, 3, 1, 1] and kan["modules"] == 3
    assert kan["input_groups"] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert kan["rmse"] < 0.01
    assert kan["cost_before"] == pytest.approx(1.716, abs=0.02)
    assert kan["cost_after"] == pytest.approx(0.607, abs=0.01)
    # the MLP fits too, but stays less modular: one clean group, the others share hub nodes
    assert mlp["rmse"] <= 0.05
    assert mlp["width"] == [9, 6, 4, 1] and mlp["modules"] == 1
    assert mlp["cost_before"] == pytest.approx(5.857, abs=0.05)
    assert mlp["cost_after"] == pytest.approx(4.612, abs=0.05)
    assert (tmp_path / "majority_kan_after_swap.gv").exists()


@pytest.mark.slow  # about 7 s per seed on 2 shared cores
@pytest.mark.parametrize("seed, width, n_mod, cost", [(1, [9, 6, 2, 1], 1, (5.611, 4.705)),
                                                       (2, [9, 5, 3, 1], 0, (46.67, 30.21))])
def test_majority_mlp_fits_but_keeps_hubs(tmp_path, seed, width, n_mod, cost):
    am = _example()
    torch.set_num_threads(1)
    data = am.majority_task()
    mlp = am.train_mlp(data, am.TASKS["majority"][2], am.Settings(seed=seed))
    row = am.analyse("majority", "mlp", mlp, data, tmp_path, log=lambda *_: None)
    assert row["rmse"] <= 0.05
    assert row["width"] == width and row["modules"] == n_mod, row
    assert any(len({i // 3 for i in g}) > 1 for g in row["input_groups"])  # a hub node
    assert row["cost_before"] == pytest.approx(cost[0], rel=0.01)
    assert row["cost_after"] == pytest.approx(cost[1], rel=0.01)
