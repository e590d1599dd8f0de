"""kanir.from_torch: MLPs lowered into the IR compute exactly what they computed, and the KAN
tools (attribution, pruning, auto_swap, tree, diagrams, formulas) work on them."""

import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import kanir
from kanir.errors import ModuleLoweringError
from kanir.ir.library import LIBRARY

ACTS = {
    "silu": nn.SiLU, "tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "identity": nn.Identity,
}


def _mlp(widths, acts, seed, last_act=None):
    gen = torch.Generator().manual_seed(seed)
    layers = []
    for k in range(len(widths) - 1):
        if k > 0:
            layers.append(ACTS[acts[(k - 1) % len(acts)]]())
        lin = nn.Linear(widths[k], widths[k + 1]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen, dtype=torch.float64))
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=gen, dtype=torch.float64))
        layers.append(lin)
    if last_act:
        layers.append(ACTS[last_act]())
    return nn.Sequential(*layers)


def _x(n_in, seed=0, n=64):
    gen = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(n, n_in, generator=gen, dtype=torch.float64)


@settings(max_examples=40, deadline=None)
@given(widths=st.lists(st.integers(1, 5), min_size=2, max_size=5),
       acts=st.lists(st.sampled_from(sorted(ACTS)), min_size=1, max_size=4),
       last=st.sampled_from([None, *sorted(ACTS)]), seed=st.integers(0, 10_000))
def test_lowered_mlp_outputs_are_identical(widths, acts, last, seed):
    mlp = _mlp(widths, acts, seed, last)
    model = kanir.KAN.from_graph(kanir.from_torch(mlp))
    x = _x(widths[0], seed)
    with torch.no_grad():
        assert model.dtype == torch.float64
        torch.testing.assert_close(model(x), mlp(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("act", sorted(ACTS))
def test_every_activation_exact_with_nesting_and_skipped_layers(act):
    mlp = nn.Sequential(
        nn.Flatten(), nn.Linear(3, 4), ACTS[act](),
        nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 4), nn.Tanh()),
        nn.Identity(), nn.Linear(4, 2), ACTS[act](),
    ).double().eval()
    g = kanir.from_torch(mlp)
    extra = 0 if act == "identity" else 1  # a trailing activation is a diagonal layer
    assert g.width == [3, 4, 4, 2] + [2] * extra
    x = _x(3, 1)
    with torch.no_grad():
        torch.testing.assert_close(kanir.KAN.from_graph(g)(x), mlp(x), rtol=0, atol=1e-12)


def test_mapping_weights_biases_and_repeated_module():
    act = nn.Tanh()  # one instance used twice: both uses must be lowered
    mlp = nn.Sequential(nn.Linear(2, 3), act, nn.Linear(3, 3), act, nn.Linear(3, 1)).double()
    g = kanir.from_torch(mlp)
    assert g.width == [2, 3, 3, 1]
    w1, b1 = mlp[2].weight.detach(), mlp[2].bias.detach()
    for j in range(3):
        assert g.node(2, j)["bias"] == float(b1[j])
        for i in range(3):
            sy = g.edge(1, i, j).symbolic
            assert (sy.fun, sy.a, sy.b, sy.c, sy.d) == ("tanh", 1.0, 0.0, float(w1[j, i]), 0.0)
    assert g.edge(0, 1, 2).symbolic.fun == "x"


def test_tiny_mlp_formula_is_the_hand_written_one():
    mlp = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), nn.Sigmoid()).double()
    with torch.no_grad():
        mlp[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        mlp[0].bias.copy_(torch.tensor([0.25, -1.0]))
        mlp[2].weight.copy_(torch.tensor([[2.0, -0.5]]))
        mlp[2].bias.copy_(torch.tensor([0.75]))
    (expr,) = kanir.to_sympy(kanir.from_torch(mlp))
    x1, x2 = sympy.symbols("x_1 x_2")
    R = sympy.Rational
    h1 = sympy.Max(0, x1 - 2 * x2 + R(1, 4))
    h2 = sympy.Max(0, R(1, 2) * x1 + 3 * x2 - 1)
    want = 1 / (1 + sympy.exp(-(2 * h1 - R(1, 2) * h2 + R(3, 4))))
    assert sympy.simplify(expr - want) == 0


def test_library_forms_agree():
    x = torch.linspace(-4, 4, 41, dtype=torch.float64)
    s = sympy.Symbol("s")
    for name in ("silu", "relu", "gelu", "gelu_tanh", "sigmoid"):
        fn = LIBRARY[name]
        f = sympy.lambdify(s, fn.sympy(s), modules=["math", {"Max": max}])
        want = torch.tensor([float(f(float(v))) for v in x], dtype=torch.float64)
        torch.testing.assert_close(fn.torch(x), want, rtol=0, atol=1e-12)
        assert torch.isfinite(fn.safe_torch(torch.tensor([-1e300, 0.0, 1e300], dtype=torch.float64))).all()


@pytest.mark.parametrize("layer, name", [
    (nn.Conv1d(1, 1, 1), "Conv1d"), (nn.LayerNorm(4), "LayerNorm"),
    (nn.BatchNorm1d(4), "BatchNorm1d"), (nn.Softmax(dim=1), "Softmax"),
])
def test_unsupported_layers_are_named_with_their_index(layer, name):
    mlp = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Tanh(), layer), nn.Linear(4, 1))
    with pytest.raises(ModuleLoweringError, match=rf"layer 1\.1 \({name}"):
        kanir.from_torch(mlp)


def test_other_bad_inputs_are_clear_errors():
    with pytest.raises(ModuleLoweringError, match=r"layer 1 \(Dropout\(p=0.5\) in train mode\)"):
        kanir.from_torch(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train())
    with pytest.raises(ModuleLoweringError, match="Linear number 2 takes 3 inputs but the layer "
                                                  "before it gives 4"):
        kanir.from_torch(nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(3, 1)))
    with pytest.raises(ModuleLoweringError, match="at least one Linear"):
        kanir.from_torch(nn.Sequential(nn.Tanh()))
    with pytest.raises(ModuleLoweringError, match="needs an nn.Sequential"):
        kanir.from_torch(nn.Tanh())
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
    with pytest.raises(ModuleLoweringError, match="non-finite"):
        kanir.from_torch(nn.Sequential(lin))
    with pytest.raises(ModuleLoweringError, match="Flatten"):
        kanir.from_torch(nn.Sequential(nn.Flatten(start_dim=0), nn.Linear(2, 1)))


def test_kan_tools_work_on_a_lowered_mlp(tmp_path):
    # two independent sub-networks, interleaved: auto_swap must make them contiguous
    mlp = nn.Sequential(nn.Linear(2, 4), nn.SiLU(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        mlp[0].weight.copy_(torch.tensor([[1.0, 0], [0, 1.0], [-1.0, 0], [0, 2.0]]))
        mlp[0].bias.zero_()
        mlp[2].weight.copy_(torch.tensor([[1.0, 0, 1.0, 0], [0, 1.0, 0, 1.0]]))
    model = kanir.KAN.from_graph(kanir.from_torch(mlp))
    x = _x(2, 3, 256)
    with torch.no_grad():
        before = model(x)
    model.attribute(x=x)
    assert model.edge_scores[0][0, 1] == 0 and model.edge_scores[0][0, 0] > 0
    cost = model.connection_cost(x)
    model.auto_swap(x)
    assert model.connection_cost(x) < cost
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=0, atol=1e-12)
    # hidden nodes of input 0 now sit together in slots 0-1 and those of input 1 in slots 2-3
    scores = model.attribute(x=x).edge_scores[0]
    assert {int(torch.argmax(scores[:, j])) for j in (0, 1)} == {0}
    assert {int(torch.argmax(scores[:, j])) for j in (2, 3)} == {1}
    model.prune(x=x)
    assert sum(1 for _ in model.graph.act_edges()) == 8  # the zero-weight edges are gone
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=0, atol=1e-12)
    t = model.tree(x, output=0)  # y_1 = silu(x_1) + silu(-x_1) depends on x_1 alone
    assert "x_1" in t.to_text()
    dot = kanir.to_dot(model.graph)
    assert dot.source.count('[label="x/(1 + exp(-x))"]') == 4  # the SiLU edges kept, drawn
    assert len(kanir.to_sympy(model.graph)) == 2
