"""pykan 0.2.8's remaining public names on kanir.KAN, called as pykan code calls them: activations
after a forward, get_fun/get_range, per-neuron attribution, checkpoints, derivative helpers,
grid updates, set_mode, get_reg and layer counts."""

import warnings

import numpy as np
import pytest
import torch
from torch.func import jacfwd, jacrev

import kanir
from kanir.errors import DataError, KanirError, ModelFileError, PassError


def _model(width=(2, [3, 1], 1), seed=0, **kw):
    return kanir.KAN(width=list(width), grid=5, seed=seed, dtype=torch.float64, device="cpu", **kw)


def _x(n=64, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=torch.float64) * 2 - 1


def _mixed_model():
    """A KAN with spline, symbolic and mult edges."""
    m = _model((3, [2, 2], 2), seed=1)
    m.fix_symbolic(0, 0, 1, "sin", params=(2.0, 0.3, 1.5, 0.1), verbose=False)
    m.fix_symbolic(1, 1, 0, "exp", params=(0.5, 0.0, 1.0, 0.0), verbose=False)
    m.fix_symbolic(0, 2, 3, "x^2", params=(1.0, 0.2, -0.7, 0.0), verbose=False)
    return m


# ---------------------------------------------------------------------- activations after forward
def test_forward_then_attribute_and_prune_need_no_data():
    m = _model()
    with pytest.raises(KanirError, match="needs data"):
        m.attribute()
    x = _x()
    m(x)
    assert m.cache_data is not None and torch.equal(m.cache_data, x)
    assert m.attribute() is m
    assert m.feature_score.shape == (2,)
    m.prune()  # no x: uses the forward's input
    m(x)
    m.auto_symbolic(lib=["x", "sin"], verbose=0)


def test_scores_follow_the_latest_forward_like_pykans():
    m = _model((3, 2, 1), seed=4)
    x = _x(100, 3)
    m(x)
    first = m.feature_score.clone()
    x2 = x.clone()
    x2[:, 0] = 0.0  # input 0 constant: it contributes no variation
    m(x2)
    assert float(m.feature_score[0]) < 1e-12 < float(first[0])
    m.attribute(x=x)  # explicit data: kept until the model changes
    m(x2)
    assert torch.equal(m.feature_score, first)


def test_forward_keeps_a_reference_and_computes_nothing():
    m = _model()
    x = _x()
    m(x)
    assert m._last_input[0].data_ptr() == x.data_ptr()  # no copy
    assert m._acts_cache is None  # activations are computed on first access only
    assert len(m.acts) == 3
    assert m._acts_cache is not None


def test_fit_after_forward_uses_the_training_inputs():
    data = kanir.create_dataset(lambda x: x[:, [0]] * x[:, [1]], 2, train_num=50, test_num=20,
                                dtype=torch.float64, seed=0)
    m = _model()
    m(_x(7))
    m.fit(data, steps=1, progress=False, update_grid=False)
    assert torch.equal(m.cache_data, data["train_input"])
    m(_x(9))  # a forward after fit counts again
    assert m.cache_data.shape == (9, 2)


def test_acts_have_pykans_shapes_and_values():
    m = _mixed_model()
    x = _x(50, 3)
    y = m(x)
    assert [tuple(a.shape) for a in m.acts] == [(50, 3), (50, 4), (50, 2)]
    assert [tuple(a.shape) for a in m.spline_preacts] == [(50, 6, 3), (50, 2, 4)]
    assert [tuple(a.shape) for a in m.spline_postacts] == [(50, 6, 3), (50, 2, 4)]
    assert [tuple(a.shape) for a in m.spline_postsplines] == [(50, 6, 3), (50, 2, 4)]
    assert [tuple(a.shape) for a in m.acts_scale] == [(6, 3), (2, 4)]
    assert [tuple(a.shape) for a in m.edge_actscale] == [(6, 3), (2, 4)]
    assert [tuple(a.shape) for a in m.subnode_actscale] == [(6,), (2,)]
    assert torch.allclose(m.acts[0], x, rtol=0, atol=0)
    assert torch.allclose(m.acts[-1], y.detach(), rtol=0, atol=1e-12)
    assert torch.equal(m.spline_preacts[0][:, 4, 1], x[:, 1])
    # subnode sums -> subnode affine -> premult values
    layer = m.net.layers[0]
    pre = m.spline_postacts[0].sum(dim=2) * layer.subnode_scale + layer.subnode_bias
    assert torch.allclose(m.acts_premult[0], pre.detach(), rtol=0, atol=1e-12)
    # the symbolic edge (0, 0, 1) holds 1.5*sin(2x+0.3)+0.1
    assert torch.allclose(m.spline_postacts[0][:, 1, 0], 1.5 * torch.sin(2 * x[:, 0] + 0.3) + 0.1,
                          rtol=0, atol=1e-12)
    # pykan's scale: std(post) / (std(pre) + 0.1), unbiased
    post, pre_x = m.spline_postacts[1][:, 0, 2], m.spline_preacts[1][:, 0, 2]
    assert float(m.acts_scale[1][0, 2]) == pytest.approx(
        float(post.std() / (pre_x.std() + 0.1)), rel=1e-12)
    assert torch.equal(m.postacts[1], m.spline_postacts[1])


def test_spline_postsplines_is_the_bare_spline():
    m = _model((1, 1))
    x = _x(40, 1)
    m(x)
    layer = m.net.layers[0]
    post = m.spline_postacts[0][:, 0, 0]
    bare = m.spline_postsplines[0][:, 0, 0]
    expect = layer.scale_base[0, 0] * torch.nn.functional.silu(x[:, 0]) + layer.scale_sp[0, 0] * bare
    assert torch.allclose(post, expect.detach(), rtol=0, atol=1e-12)
    assert torch.allclose(m.acts_scale_spline[0], m.acts_scale[0], rtol=1e-12, atol=0)


def test_acts_follow_parameter_updates_and_new_inputs():
    m = _model()
    x = _x()
    m(x)
    before = m.acts[-1].clone()
    with torch.no_grad():
        m.net.layers[1].coef.mul_(2.0)  # an optimiser step changes parameters in place
    assert not torch.allclose(m.acts[-1], before)
    assert torch.allclose(m.acts[-1], m(x).detach(), rtol=0, atol=1e-12)
    m(x[:10])
    assert m.acts[0].shape == (10, 2)


def test_get_act_accepts_a_dataset_and_needs_data():
    m = _model()
    with pytest.raises(KanirError, match="run the model on data first"):
        _ = m.acts
    with pytest.raises(KanirError, match="get_act needs activations"):
        m.get_act()
    data = {"train_input": _x(30), "train_label": torch.zeros(30, 1, dtype=torch.float64)}
    assert m.get_act(data) is m
    assert m.acts[0].shape == (30, 2)
    with pytest.raises(DataError, match="train_input"):
        m.get_act({"x": 1})
    m.get_act(_x(1))  # one sample: values yes, spreads no
    assert m.acts[1].shape == (1, 4)
    with pytest.raises(DataError, match="at least 2"):
        _ = m.acts_scale


def test_get_fun_and_get_range(tmp_path, capsys):
    m = _model()
    x = _x(80)
    m(x)
    xs, ys = m.get_fun(0, 1, 2)
    assert isinstance(xs, np.ndarray) and xs.shape == ys.shape == (80,)
    assert np.all(np.diff(xs) >= 0)
    order = np.argsort(x[:, 1].numpy(), kind="stable")
    assert np.array_equal(xs, x[order, 1].numpy())
    assert np.array_equal(ys, m.spline_postacts[0][order, 2, 1].numpy())
    r = m.get_range(0, 1, 2)
    assert r == (xs.min(), xs.max(), ys.min(), ys.max())
    assert "x range: [" in capsys.readouterr().out
    m.get_range(0, 1, 2, verbose=False)
    assert capsys.readouterr().out == ""
    png = tmp_path / "edge.png"
    m.get_fun(0, 1, 2, path=png)
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(KanirError, match=r"edge \(0,2,0\) does not exist"):
        m.get_range(0, 2, 0)
    with pytest.raises(KanirError, match="layer l must be in 0..1"):
        m.get_fun(2, 0, 0)


# ---------------------------------------------------------------------- attribution by neuron
def test_attribute_per_neuron_is_pykans_mode():
    m = _model((3, 4, 2, 1), seed=2)
    x = _x(100, 3)
    m(x)
    fs = m.feature_score
    per = m.attribute(1)
    assert per.shape == (4, 3)
    # the backward pass is linear: the rows of any layer add up to the input scores
    assert torch.allclose(per.sum(dim=0), fs, rtol=1e-10, atol=0)
    assert torch.allclose(m.attribute(2).sum(dim=0), fs, rtol=1e-10, atol=0)
    assert torch.allclose(m.attribute(3)[0], fs, rtol=1e-12, atol=0)
    assert torch.allclose(m.attribute(0), torch.diag(fs), rtol=1e-12, atol=0)
    row = m.attribute(1, 0)  # not x=1
    assert torch.equal(row, per[0])
    assert torch.allclose(m.attribute(1, 0, out_score=torch.ones(4)),
                          per[0] / m.node_scores[1][0], rtol=1e-10)
    assert torch.equal(m.feature_score, fs)  # the whole-model scores are untouched
    with pytest.raises(KanirError, match=r"attribute\(x=...\)"):
        m.attribute(x)
    with pytest.raises(KanirError, match="neuron i must be in 0..3"):
        m.attribute(1, 4)
    with pytest.raises(PassError, match="layer l must be a node layer index in 0..3"):
        m.attribute(4)


def test_node_attribute_and_feature_interaction():
    m = _model((3, 3, 1), seed=3)
    m.remove_edge(0, 1, 0).remove_edge(0, 2, 0)   # node 0 sees x0 only
    m.remove_edge(0, 0, 1)                        # node 1 sees x1, x2
    x = _x(200, 3)
    m(x)
    scores = m.node_attribute()
    assert [tuple(s.shape) for s in scores] == [(3, 3), (1, 3)]
    assert m.node_attribute_scores is scores
    assert m.feature_interaction(1, neuron_th=1e-6, feature_th=1e-6) == {(0,): 1, (1, 2): 1,
                                                                          (0, 1, 2): 1}
    assert m.feature_interaction(1, neuron_th=1e9) == {}


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    m = _model()
    x = _x()
    m(x)
    m.saveckpt(str(tmp_path / "mark"))
    assert (tmp_path / "mark.kanir").is_file()
    same = kanir.KAN.loadckpt(str(tmp_path / "mark"))
    assert torch.equal(same(x), m(x))
    assert torch.equal(same.cache_data, x)
    same.attribute()  # the cached inputs came back
    with pytest.raises(ModelFileError):
        kanir.KAN.loadckpt(str(tmp_path / "absent"))


def test_checkout_history_and_log_history(capsys):
    m = _model()
    x = _x()
    y0 = m(x).detach()
    m.remove_edge(0, 0, 0)
    assert not torch.equal(m(x), y0)
    old = m.checkout("0.0")
    assert torch.equal(old(x), y0)
    assert m.version == "0.1"  # checkout changes nothing
    with torch.no_grad():
        m.net.layers[0].coef.mul_(3)
    assert m.log_history("scale by hand") is m
    assert m.version == "0.2" and m.list_versions()[-1].op == "scale by hand"
    m.history()
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["- => init => 0.0", "0.0 => remove_edge => 0.1", "0.1 => scale by hand => 0.2"]
    m.history(1)
    assert capsys.readouterr().out.splitlines() == lines[-1:]
    m.history(10)
    assert capsys.readouterr().out.splitlines() == lines


# ---------------------------------------------------------------------- derivatives
def _per_sample(fn, x, order):
    one = lambda r: fn(r.unsqueeze(0)).reshape(-1)
    d = jacrev(one) if order == 1 else jacfwd(jacrev(one))
    return torch.stack([d(r) for r in x]).detach()


def test_jacobian_and_hessian_match_torch_func_on_spline_symbolic_and_mult_edges():
    m = _mixed_model()
    x = _x(12, 3, seed=4)
    m(x[:5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        J_ref, H_ref = _per_sample(m.net, x, 1), _per_sample(m.net, x, 2)
    J, H = kanir.jacobian(m, x), kanir.hessian(m, x)
    assert J.shape == (12, 2, 3) and H.shape == (12, 2, 3, 3)
    assert torch.allclose(J, J_ref, rtol=0, atol=1e-12)
    assert torch.allclose(H, H_ref, rtol=0, atol=1e-12)
    assert H_ref.abs().max() > 0.1  # a real test: curvature is present
    assert torch.allclose(kanir.hessian(m, x, outputs=1), H[:, 1:], rtol=0, atol=0)
    assert m.cache_data.shape == (5, 3)  # probing does not replace the remembered input


def test_pykan_batch_jacobian_and_hessian():
    f = lambda x: torch.cat([x[:, [0]] ** 2 * x[:, [1]], torch.sin(x[:, [1]])], dim=1)
    x = _x(7)
    a, b = x[:, 0], x[:, 1]
    Js = kanir.batch_jacobian(f, x)
    assert Js.shape == (7, 2)
    assert torch.allclose(Js, torch.stack([2 * a * b, a ** 2], 1), rtol=0, atol=1e-14)
    Jv = kanir.batch_jacobian(f, x, mode="vector")
    assert Jv.shape == (7, 2, 2)
    assert torch.allclose(Jv[:, 1], torch.stack([0 * a, torch.cos(b)], 1), rtol=0, atol=1e-14)
    H = kanir.batch_hessian(f, x)
    assert H.shape == (7, 2, 2)
    expect = torch.stack([torch.stack([2 * b, 2 * a], 1), torch.stack([2 * a, 0 * a], 1)], 1)
    assert torch.allclose(H, expect, rtol=0, atol=1e-14)
    # pykan's definition: the Jacobian of the batch sum (autograd.functional, as kan.utils)
    ref = torch.autograd.functional.jacobian(lambda z: f(z).sum(0), x).permute(1, 0, 2)
    assert torch.allclose(Jv, ref, rtol=0, atol=1e-14)
    with pytest.raises(DataError, match="mode must be"):
        kanir.batch_jacobian(f, x, mode="matrix")


def test_jacobian_create_graph_and_row_mixing_functions():
    m = _model()
    x = _x(20)
    J = kanir.jacobian(m, x, create_graph=True)
    (J ** 2).sum().backward()  # a physics loss on derivatives trains the parameters
    assert m.net.layers[0].coef.grad is not None and m.net.layers[0].coef.grad.abs().sum() > 0
    centre = lambda z: (z - z.mean(dim=0)) ** 2  # rows interact: per sample it is 0
    assert torch.equal(kanir.jacobian(centre, x), torch.zeros(20, 2, 2, dtype=torch.float64))
    with pytest.raises(DataError, match="shape \\(batch, inputs\\)"):
        kanir.jacobian(m, x[0])


# ---------------------------------------------------------------------- grids, modes, counts
def test_update_grid_keeps_the_function_and_records_a_version():
    m = _model((1, 2, 1))
    x = _x(200, 1) * 0.5
    y = m(x).detach()
    assert m.update_grid(x) is m
    assert m.list_versions()[-1].op == "update_grid"
    knots = m.net.layers[0].grid[0]
    assert float(knots[3]) == pytest.approx(float(x.min()), abs=0.02)  # moved to the data
    assert torch.allclose(m(x), y, rtol=0, atol=1e-3)
    m.update_grid_from_samples(x)
    assert m.list_versions()[-1].op == "update_grid"


def test_initialize_from_another_model_copies_the_function():
    coarse = _model((2, 3, 1), seed=5)
    fine = kanir.KAN(width=[2, 3, 1], grid=15, seed=9, dtype=torch.float64, device="cpu")
    x = _x(300)
    assert fine.initialize_from_another_model(coarse, x) is fine
    assert fine.grid == 15
    assert torch.allclose(fine(x), coarse(x), rtol=0, atol=1e-9)  # nested knots: exact
    with pytest.raises(KanirError, match="same width"):
        _model((2, 2, 1)).initialize_from_another_model(coarse, x)


def test_set_mode_switches_parts():
    m = _model((1, 1))
    x = _x(30, 1)
    y = m(x).detach()
    m.set_mode(0, 0, 0, "s")
    assert m.graph.edge(0, 0, 0).symbolic.fun == "0"
    assert torch.equal(m(x), torch.zeros_like(y))
    m.set_mode(0, 0, 0, "n")
    assert torch.allclose(m(x), y, rtol=0, atol=0)
    m.fix_symbolic(0, 0, 0, "sin", params=(1.0, 0.0, 1.0, 0.0), verbose=False)
    m.set_mode(0, 0, 0, "sn", mask_n=0.5)
    assert torch.allclose(m(x), 0.5 * y + torch.sin(x), rtol=0, atol=1e-14)
    m.set_mode(0, 0, 0, "off")
    assert m.graph.edge(0, 0, 0) is not None and m.graph.edge(0, 0, 0).kind == "zero"
    assert torch.equal(m(x), torch.zeros_like(y))
    with pytest.raises(PassError, match="j .* 0..0"):
        m.set_mode(0, 0, 1, "n")


def test_get_reg_is_fits_regulariser():
    m = _model()
    x = _x(50)
    m(x)
    l1 = m.get_reg("edge_forward_spline_n", 1.0, 0.0, 0.0, 0.0)
    assert l1.item() == pytest.approx(float(sum(a.sum() for a in m.acts_scale_spline)), rel=1e-10)
    reg = m.get_reg("edge_forward_spline_n", 1.0, 2.0, 0.0, 0.0)
    reg.backward()
    assert m.net.layers[0].coef.grad is not None
    with pytest.raises(KanirError, match="edge_forward_spline_n"):
        m.get_reg("edge_backward", 1.0, 2.0, 0.0, 0.0)


def test_layer_counts_params_and_switches():
    m = _model((2, [3, 1], 1))
    assert m.width_in == [2, 4, 1]
    assert m.width_out == [2, 5, 1]
    assert m.n_sum == [3] and m.n_mult == [1]
    assert list(m.get_params()) == list(m.parameters())
    assert m.speed(compile=False) is m
    assert m.disable_symbolic_in_fit(0.0) == (True, True)


def test_speed_compile_returns_pykans_compiled_module():
    m = _model()
    compiled = m.speed(compile=True)  # compiled lazily, on the first call
    assert compiled is not m and compiled._orig_mod is m
