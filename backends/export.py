"""``kanir.export(model_or_graph, to=...)``: a model as source code (C, NumPy, JAX, Python,
LaTeX) or as a deployable torch artefact (TorchScript, ONNX), all with dynamic batch size.

The torch artefacts are traced from the same straight-line program as the source targets
(:mod:`kanir.backends.codegen`, printed for torch), a plain element-wise computation with no
kanir code inside, so they load without kanir installed.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings

from kanir.errors import KanirError
from kanir.ir.graph import KanGraph

from .codegen import ExportError, to_c, to_jax, to_latex, to_numpy, to_python, to_torch_source

__all__ = ["TARGETS", "ExportError", "export", "torch_module"]

TEXT_TARGETS = {"latex": to_latex, "numpy": to_numpy, "c": to_c, "jax": to_jax,
                "python": to_python}
TARGETS = (*TEXT_TARGETS, "torchscript", "onnx")


def _graph(model_or_graph) -> KanGraph:
    if isinstance(model_or_graph, KanGraph):
        return model_or_graph
    g = getattr(model_or_graph, "graph", None)
    if isinstance(g, KanGraph):
        return g
    raise ExportError(f"export needs a kanir.KAN or a KanGraph, got "
                      f"{type(model_or_graph).__name__}")


def export(model_or_graph, to: str, path=None, name: str = "kan"):
    """Export a KAN (or KanGraph) ``to`` one of :data:`TARGETS`.

    Source targets return the text; "torchscript" returns a ``torch.jit.ScriptModule`` and
    "onnx" the serialised ONNX model (bytes). With ``path`` the result is also written there.
    ``name`` is the function name in generated code.
    """
    if to not in TARGETS:
        raise ExportError(f"unknown export target {to!r}; choose one of {', '.join(TARGETS)}")
    if not str(name).isidentifier():
        raise ExportError(f"name must be an identifier (the generated function's name), got "
                          f"{name!r}")
    graph = _graph(model_or_graph)
    if to in TEXT_TARGETS:
        fn = TEXT_TARGETS[to]
        text = fn(graph) if to == "latex" else fn(graph, name)
        if path is not None:
            _write(path, text.encode())
        return text
    module = torch_module(graph)
    if to == "torchscript":
        import torch

        scripted = _trace(module)
        if path is not None:
            buf = io.BytesIO()
            torch.jit.save(scripted, buf)
            _write(path, buf.getvalue())
        return scripted
    data = _onnx_bytes(module)
    if path is not None:
        _write(path, data)
    return data


def _write(path, data: bytes) -> None:
    """Write the export atomically, with a plain file's mode (kanir.ir.io.atomic_write, not
    mkstemp's 0600); a failure is an ExportError naming the path."""
    from kanir.errors import ModelFileError
    from kanir.ir.io import atomic_write

    try:
        atomic_write(os.fspath(path), data)
    except ModelFileError as e:
        raise ExportError(str(e).replace("cannot save to", "cannot write", 1)) from None


# ---------------------------------------------------------------------------- torch
def torch_module(graph: KanGraph):
    """A plain ``nn.Module`` computing the graph in float64 from generated torch code:
    inputs (batch, n_inputs) -> outputs (batch, n_outputs)."""
    import torch

    source = to_torch_source(graph, "kan")
    namespace: dict = {}
    exec(compile(source, "<kanir export>", "exec"), namespace)  # our own generated code
    fn = namespace["kan"]
    n_in = len(graph.input_names)

    class ExportedKAN(torch.nn.Module):
        """The exported KAN (float64)."""

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return fn(inputs.to(torch.float64))

    module = ExportedKAN()
    module.n_inputs = n_in
    module.source = source
    return module


def _example(module):
    import torch

    return torch.linspace(-0.5, 0.5, 3 * module.n_inputs, dtype=torch.float64).reshape(3, -1)


def _trace(module):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice (torch >= 2.10)
        return torch.jit.trace(module, (_example(module),), check_trace=False)


def _onnx_bytes(module) -> bytes:
    import torch

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'kanir[onnx]'") from None
    # export to a file in a private temporary folder: torch's exporters differ in what they do
    # with a file object (some write a file named after its repr into the working directory)
    with tempfile.TemporaryDirectory(prefix="kanir-onnx-") as folder, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = os.path.join(folder, "model.onnx")
        try:
            torch.onnx.export(module, (_example(module),), path, input_names=["inputs"],
                              output_names=["outputs"], dynamo=False, opset_version=17,
                              dynamic_axes={"inputs": {0: "batch"}, "outputs": {0: "batch"}})
        except KanirError:
            raise
        except Exception as e:
            raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {e}") from None
        with open(path, "rb") as f:
            return f.read()
