"""kanir.KAN is a torch nn.Module: its facade must not shadow nn.Module's attributes, and the
whole nn.Module surface (moves, casts, state dicts, hooks, copies, torch.func) must work on a
trained model with spline, symbolic and mult edges."""

import copy

import pytest
import torch
from torch import nn

import kanir
from kanir.backends.torch import KANLayer, KANModule
from kanir.errors import GraphError, KanirError

# Intended overrides of nn.Module attributes, per class; anything else is a shadowing bug.
ALLOWED = {
    kanir.KAN: {"__init__", "forward", "extra_repr"},
    KANModule: {"__init__", "forward"},
    KANLayer: {"__init__", "forward", "extra_repr", "_apply", "get_extra_state", "set_extra_state"},
}
_CLASS_BOOKKEEPING = {"__module__", "__doc__", "__qualname__", "__firstlineno__", "__dict__",
                      "__weakref__", "__annotations__", "__static_attributes__", "__orig_bases__",
                      "__parameters__", "__annotate__", "__annotate_func__", "__annotations_cache__",
                      "__classdictcell__"}


def nn_module_names() -> set[str]:
    """Every name an nn.Module has: class attributes and what __init__ sets on an instance."""
    return set(dir(nn.Module)) | set(vars(nn.Module()))


def shadowing(cls: type, allowed: set[str]) -> dict[str, list[str]]:
    """{class in cls's MRO below nn.Module: names it defines that nn.Module also has}, minus
    ``allowed``: walks the MRO, so a mixin added later is checked too."""
    names = nn_module_names()
    found = {}
    for klass in cls.__mro__:
        if klass is nn.Module:
            break
        bad = sorted(n for n in vars(klass)
                     if n in names and n not in allowed and n not in _CLASS_BOOKKEEPING)
        if bad:
            found[klass.__name__] = bad
    return found


@pytest.mark.parametrize("cls", list(ALLOWED), ids=lambda c: c.__name__)
def test_no_attribute_shadows_nn_module(cls):
    assert shadowing(cls, ALLOWED[cls]) == {}


def test_shadowing_check_catches_a_mixin_like_the_old_apply():
    class BadMixin:
        def _apply(self, graph, op):  # the signature that broke model.to() before
            raise AssertionError

        def training(self):
            return None

    class Shadowed(BadMixin, kanir.KAN):
        pass

    assert shadowing(Shadowed, ALLOWED[kanir.KAN]) == {"BadMixin": ["_apply", "training"]}


def test_facade_instance_attributes_do_not_replace_nn_module_ones():
    model = kanir.KAN([2, 3, 1], seed=0, device="cpu")
    fresh = nn.Module()
    for name, value in vars(fresh).items():
        assert type(getattr(model, name)) is type(value), name


# ---------------------------------------------------------------------- a trained model
def _target(x):
    return x[:, [0]] * x[:, [1]] + torch.sin(2 * x[:, [0]])


@pytest.fixture(scope="module")
def trained():
    """(model, dataset, x): float32, spline + symbolic + mult edges, trained a few steps."""
    data = kanir.create_dataset(_target, n_var=2, seed=0, train_num=200, test_num=100)
    model = kanir.KAN(width=[2, [2, 1], 1], grid=5, seed=0, device="cpu")
    model.fit(data, steps=5, progress=False)
    model.fix_symbolic(0, 0, 0, "sin")
    g = model.graph
    kinds = {(a.spline is not None and a.spline.active, a.symbolic is not None)
             for _, _, _, a in g.act_edges(0)}
    assert (False, True) in kinds and (True, False) in kinds
    assert model.net.layers[0].out_width.n_mult == 1
    return model, data, data["test_input"][:16]


@pytest.fixture
def model(trained):
    return copy.deepcopy(trained[0])


def _out(model, x):
    with torch.no_grad():
        return model(x.to(model.dtype))


def _index_buffers_are_integer(model):
    for layer in model.net.layers:
        assert layer.has_spline.dtype == torch.bool
        assert layer.sym_index.dtype == torch.long
        assert layer.mult_perm.dtype == torch.long


def test_to_float64_converts_everything_and_trains_in_float64(model, trained):
    _, data, x = trained
    y32 = _out(model, x)
    assert model.to(torch.float64) is model
    assert model.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in model.parameters())
    _index_buffers_are_integer(model)
    torch.testing.assert_close(_out(model, x), y32.double(), rtol=1e-5, atol=1e-6)
    before = [p.detach().clone() for p in model.parameters()]
    hist = model.fit({k: v.double() for k, v in data.items()}, steps=3, progress=False)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert hist["train_loss"][-1] <= hist["train_loss"][0]
    assert model.graph.meta["dtype"] == "float64"


def test_to_dtype_and_double_float_round_trip(model, trained):
    x = trained[2]
    y = _out(model, x)
    assert model.to_dtype("float64").dtype == torch.float64
    assert model.float().dtype == torch.float32
    assert torch.equal(_out(model, x), y)  # float32 -> float64 -> float32 is exact
    assert model.double().dtype == torch.float64
    with pytest.raises(GraphError, match="float32 and float64"):
        model.to_dtype(torch.float16)


def test_to_cpu_and_cpu_keep_outputs(model, trained):
    x = trained[2]
    y = _out(model, x)
    assert model.to("cpu") is model and model.cpu() is model
    assert model.to(torch.device("cpu"), torch.float32).device == torch.device("cpu")
    assert torch.equal(_out(model, x), y)


@pytest.mark.parametrize("cast", ["half", "bfloat16"])
def test_half_precision_is_refused_with_a_clear_error(model, trained, cast):
    _, data, x = trained
    getattr(model, cast)()
    with pytest.raises(GraphError, match="float16 and bfloat16 are unsupported"):
        model(x)
    with pytest.raises(KanirError, match="float16 and bfloat16 are unsupported"):
        model.fit(data, steps=1, progress=False)
    model.float()
    assert model(x).dtype == torch.float32


@pytest.mark.parametrize("dst", [torch.float64, "torch.DoubleTensor", torch.DoubleTensor])
def test_type_casts_floats_and_keeps_index_buffers(model, trained, dst):
    x = trained[2]
    ref = _out(copy.deepcopy(model).double(), x)
    assert model.type(dst) is model
    assert model.dtype == torch.float64
    _index_buffers_are_integer(model)
    assert torch.equal(_out(model, x), ref)


def test_share_memory(model, trained):
    x = trained[2]
    y = _out(model, x)
    model.share_memory()
    assert all(p.is_shared() for p in model.parameters())
    assert torch.equal(_out(model, x), y)


def test_meta_device_then_to_empty_and_load_state_dict(model, trained):
    x = trained[2]
    y, sd = _out(model, x), model.state_dict()
    meta = copy.deepcopy(model).to("meta")
    assert meta.device == torch.device("meta")
    out = meta(x.to("meta"))
    assert out.device.type == "meta" and out.shape == (16, 1)
    meta.to_empty(device="cpu")
    assert meta.device == torch.device("cpu")
    meta.load_state_dict(sd)
    assert torch.equal(_out(meta, x), y)


def test_state_dict_into_a_fresh_model_of_the_same_width(model, trained):
    x = trained[2]
    fresh = kanir.KAN(width=[2, [2, 1], 1], grid=5, seed=7, device="cpu")
    assert not torch.equal(_out(fresh, x), _out(model, x))
    assert fresh.load_state_dict(model.state_dict()).missing_keys == []
    assert torch.equal(_out(fresh, x), _out(model, x))
    assert fresh.graph.edge(0, 0, 0).symbolic.fun == "sin"
    funs = lambda m: [(l, i, j, a.symbolic and a.symbolic.fun) for l in range(m.depth)
                      for l, i, j, a in m.graph.act_edges(l)]
    assert funs(fresh) == funs(model)


def test_state_dict_through_torch_save_and_weights_only_load(model, trained, tmp_path):
    x = trained[2]
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    fresh = kanir.KAN(width=[2, [2, 1], 1], grid=5, seed=3, device="cpu")
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert torch.equal(_out(fresh, x), _out(model, x))


def test_state_dict_of_another_width_is_a_clear_error(model):
    other = kanir.KAN(width=[2, 3, 1], grid=5, seed=0, device="cpu")
    with pytest.raises((RuntimeError, KanirError)):
        other.load_state_dict(model.state_dict())


def test_train_eval_requires_grad_and_zero_grad(model, trained):
    _, data, x = trained
    assert model.eval() is model and not model.training
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(x).square().sum().backward()
    l0 = model.net.layers[0]
    assert l0.coef.grad is not None and l0.sym_affine.grad[0, 0].abs().sum() > 0
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    assert not model(x).requires_grad
    with pytest.raises(KanirError, match="no trainable parameters"):
        model.fit(data, steps=1, progress=False)


def test_named_parameters_and_apply(model):
    names = dict(model.named_parameters())
    assert {"net.layers.0.coef", "net.layers.0.sym_affine", "net.layers.1.scale_base"} <= set(names)
    assert names["net.layers.0.coef"].shape == (2, 4, 5 + 3)
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["KANLayer", "KANLayer", "ModuleList", "KANModule", "KAN"]


def test_forward_hooks(model, trained):
    x = trained[2]
    got = {}
    h1 = model.register_forward_hook(lambda m, inp, out: got.__setitem__("model", out))
    h2 = model.net.layers[0].register_forward_hook(lambda m, inp, out: got.__setitem__("l0", out))
    y = model(x)
    assert torch.equal(got["model"], y)
    assert got["l0"].shape == (16, 3)  # two sum nodes and one mult node
    assert torch.equal(model.net.layers[1](got["l0"]), y)
    h1.remove(), h2.remove()
    got.clear()
    model(x)
    assert got == {}


def test_deepcopy_is_independent(model, trained):
    x = trained[2]
    twin = copy.deepcopy(model)
    assert torch.equal(_out(twin, x), _out(model, x))
    with torch.no_grad():
        twin.net.layers[1].coef.add_(1.0)
    assert not torch.equal(_out(twin, x), _out(model, x))


def test_functional_call(model, trained):
    x = trained[2]
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    assert torch.equal(torch.func.functional_call(model, params, (x,)), model(x))
    params["net.layers.0.sym_affine"][0, 0, 3] += 0.5  # the sin edge's additive constant d
    changed = torch.func.functional_call(model, params, (x,))
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.net.layers[0].sym_affine[0, 0, 3] += 0.5
    assert torch.equal(changed, twin(x))
    assert not torch.equal(changed, model(x))
    grads = torch.func.grad(lambda p: torch.func.functional_call(model, p, (x,)).sum())(params)
    assert grads["net.layers.0.coef"].shape == (2, 4, 8)


@pytest.mark.parametrize("formula, ranges", [
    ("x*sin(y) + exp(z)", {"x": [-2, 2], "y": [-2, 2], "z": [-1, 1]}),
    ("m0/sqrt(1 - v**2/c**2)", {"m0": [0.5, 2], "v": [0.1, 0.9], "c": [1, 2]}),
    ("exp(-(x - y)**2/2)/sqrt(2*pi)", {"x": [-1, 1], "y": [-1, 1]}),
    ("a*b/(4*pi*r**2)", {"a": [1, 2], "b": [1, 2], "r": [1, 3]}),
    ("x*cos(y)**2 + log(1 + z**2)", {"x": [-2, 2], "y": [-2, 2], "z": [-2, 2]}),
])
def test_compiled_kan_in_float64_equals_the_formula(formula, ranges):
    import sympy

    names = list(ranges)
    graph = kanir.compile(formula, variables=names)
    assert list(graph.meta["input_names"]) == names
    ranges = list(ranges.values())
    model = kanir.KAN.from_graph(graph, device="cpu").to(torch.float64)
    assert model.dtype == torch.float64
    gen = torch.Generator().manual_seed(0)
    lo, hi = torch.tensor(ranges, dtype=torch.float64).T
    x = lo + (hi - lo) * torch.rand(200, len(names), generator=gen, dtype=torch.float64)
    symbols = sympy.symbols(names)
    f = sympy.lambdify(symbols, sympy.sympify(formula, locals=dict(zip(names, symbols))), "math")
    want = torch.tensor([f(*row) for row in x.tolist()], dtype=torch.float64)
    with torch.no_grad():
        got = model(x)[:, 0]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_forward_and_fit_create_nothing_on_the_default_device(model, trained):
    """With the default device set elsewhere ("meta" stands in for CUDA), a CPU model's forward,
    backward, fit (both optimisers, grid updates, regulariser, mini-batches) and refine stay on
    the CPU: every tensor they create names its device."""
    _, data, x = trained
    with torch.device("meta"):
        y = model(x)
        assert y.device.type == "cpu"
        y.sum().backward()
        for opt, lr in (("LBFGS", 1.0), ("Adam", 1e-2)):
            hist = model.fit(data, opt=opt, steps=3, lr=lr, lamb=1e-3, batch=100, progress=False)
            assert all(v == v for v in hist["train_loss"])
        model.refine(7)
        assert model(x).device.type == "cpu" and model.grid == 7
