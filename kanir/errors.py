"""kanir's exception types, all in one place: every failure kanir raises on purpose is a KanirError
subclass with a message naming the problem. Each class also derives from the builtin a caller would
expect (ValueError, KeyError, ...), so ``except ValueError`` keeps working.

The tree (builtin bases in brackets; "raised by" names the main users)::

    KanirError                                  [Exception]
    ├── WidthSpecError                          [ValueError]    width / mult_arity specs (kanir.ir.width)
    ├── GraphError                              [ValueError]    KanGraph.check
    ├── DataError                               [ValueError]    bad input data
    │   ├── UnsupportedFormula                                  kanir.symbolic.formula_fit.compile_torch
    │   └── InputTypeError                      [TypeError]     kanir.sklearn estimators
    ├── ModelFileError                          [OSError]       .kanir files (kanir.ir.io)
    ├── LibraryError                            [KeyError]      the symbolic function library
    ├── FormulaError                            [ValueError]    formulas (kanir.compile, grammar)
    │   ├── FormulaSyntaxError                                  text not in the formula language
    │   └── FormulaNameError                                    unknown / misused names
    ├── IRSyntaxError                           [ValueError]    IR text (kanir.parse_ir)
    ├── PassError                               [ValueError]    graph passes
    │   └── ModuleSpecError                                     module specs (kanir.grammar.module_spec)
    ├── PipelineError                           [ValueError]    pass pipeline text (kanir opt -p)
    ├── ArgumentError                           [ValueError]    user arguments (kanir.arguments)
    ├── ModuleLoweringError                     [ValueError]    kanir.from_torch
    ├── VersionError                            [KeyError]      model versions (kanir.model.versions)
    ├── FunctionError                           [ValueError]    science: function under test
    ├── GroupError                              [ValueError]    science: variable groups
    ├── DatasetError                            [LookupError]   kanir.datasets
    ├── DistributedError                        [RuntimeError]  kanir.train.distributed
    ├── UsageError                              [ValueError]    `kanir` command-line arguments
    ├── ExportUsageError                        [ValueError]    `kanir export` arguments
    ├── ExportError                             [ValueError]    kanir.backends.codegen / export
    ├── SymbolicExportError                     [ValueError]    kanir.backends.sympy.to_sympy
    └── DiagramError                            [RuntimeError]  diagrams (kanir.backends.graphviz)
        └── GraphvizNotFoundError                               the Graphviz `dot` program is missing

The defining modules of old re-export their classes (``from kanir.backends.graphviz import
DiagramError`` still works).
"""

__all__ = [
    "KanirError", "WidthSpecError", "GraphError", "DataError", "UnsupportedFormula",
    "InputTypeError", "ModelFileError", "LibraryError", "FormulaError", "FormulaSyntaxError",
    "FormulaNameError", "PassError", "ModuleSpecError", "ArgumentError", "ModuleLoweringError",
    "VersionError", "FunctionError", "GroupError", "DatasetError", "DistributedError",
    "UsageError", "ExportUsageError", "ExportError", "SymbolicExportError", "DiagramError",
    "GraphvizNotFoundError", "IRSyntaxError", "PipelineError",
]


class KanirError(Exception):
    """Base class of every error kanir raises on purpose."""


class _KeyMessage:
    """Mixin for KeyError subclasses: print the message, not KeyError's repr() of it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# ------------------------------------------------------------------------------ the IR
class WidthSpecError(KanirError, ValueError):
    """A width / mult_arity specification is malformed."""


class GraphError(KanirError, ValueError):
    """A KanGraph is inconsistent (raised by ``KanGraph.check``)."""


class DataError(KanirError, ValueError):
    """Input data has the wrong shape, dtype, or contains NaN/inf."""


class UnsupportedFormula(DataError):
    """The formula uses something the torch compiler cannot evaluate."""


class InputTypeError(DataError, TypeError):
    """X or y has a type scikit-learn cannot use (sparse matrix, complex numbers, ...)."""


class ModelFileError(KanirError, OSError):
    """A .kanir file is missing, damaged, truncated, foreign or of an unknown version."""


class LibraryError(_KeyMessage, KanirError, KeyError):
    """A symbolic function name is unknown or a registration is invalid."""


# ------------------------------------------------------------------------------ formulas
class FormulaError(KanirError, ValueError):
    """A formula cannot be parsed or compiled; the message names the position or sub-expression."""


class FormulaSyntaxError(FormulaError):
    """The text is not in the formula language; ``line`` and ``column`` are 1-based, ``expected``
    lists in words what would have fitted there (empty when that is not the point)."""

    def __init__(self, message: str, line: int, column: int, expected=()):
        super().__init__(message)
        self.line, self.column, self.expected = line, column, tuple(expected)


class FormulaNameError(FormulaError):
    """A name is unknown or misused (unknown variable or function, wrong argument count);
    ``line`` and ``column`` are None when the name comes from a sympy expression."""

    def __init__(self, message: str, name: str, line: int | None = None,
                 column: int | None = None):
        super().__init__(message)
        self.name, self.line, self.column = name, line, column


class IRSyntaxError(KanirError, ValueError):
    """kanir IR text (``kanir.parse_ir``) is malformed or does not fit together; ``line`` and
    ``column`` are 1-based and the message ends with the source line and a caret."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(message)
        self.line, self.column = line, column


# ------------------------------------------------------------------------------ passes
class PassError(KanirError, ValueError):
    """A graph pass got invalid arguments (unknown layer, node index, ...)."""


class ModuleSpecError(PassError):
    """A module spec is malformed or does not fit the model; ``column`` is 1-based (or None)."""

    def __init__(self, message: str, column: int | None = None):
        super().__init__(message)
        self.column = column


class PipelineError(KanirError, ValueError):
    """A pass pipeline text (``"prune{edge_th=0.05},auto-swap"``) names an unknown pass or option,
    gives an option a value of the wrong type, or is not well formed; the message shows the text
    with a caret under the offending position (``column`` is 1-based, or None)."""

    def __init__(self, message: str, text: str | None = None, column: int | None = None):
        self.message, self.text, self.column = message, text, column
        super().__init__(_with_caret(message, text, column))


def _with_caret(message: str, text: str | None, column: int | None) -> str:
    if text is None:
        return message
    if column is None:
        return f"{message}\n    {text}"
    return f"{message} (column {column})\n    {text}\n    {' ' * (column - 1)}^"


# ------------------------------------------------------------------------------ the library
class ArgumentError(KanirError, ValueError):
    """An argument of a kanir function has the wrong type, range or value; the message names it."""


class ModuleLoweringError(KanirError, ValueError):
    """A torch module cannot be lowered into a KanGraph (kanir.from_torch names the layer)."""


class VersionError(_KeyMessage, KanirError, KeyError):
    """An unknown or malformed version label, or versions that are switched off."""


class FunctionError(KanirError, ValueError):
    """The function under test cannot be evaluated or differentiated as the tests need."""


class GroupError(KanirError, ValueError):
    """Variable groups are empty, overlap, or name variables that do not exist."""


class DatasetError(KanirError, LookupError):
    """An equation name or id that the shipped data does not have, or a damaged data file."""


class DistributedError(KanirError, RuntimeError):
    """The process group cannot be set up, or ranks disagree (e.g. different batch counts)."""


# ------------------------------------------------------------------------------ command line
class UsageError(KanirError, ValueError):
    """A command-line argument is malformed."""


class ExportUsageError(KanirError, ValueError):
    """A ``kanir export`` argument is malformed."""


# ------------------------------------------------------------------------------ backends
class ExportError(KanirError, ValueError):
    """A model cannot be exported as asked (unknown target, unsupported function, ...)."""


class SymbolicExportError(KanirError, ValueError):
    """A graph cannot be written as a formula as asked (e.g. it has spline edges)."""


class DiagramError(KanirError, RuntimeError):
    """A diagram cannot be built or rendered (bad arguments, a failed ``dot`` run)."""


class GraphvizNotFoundError(DiagramError):
    """The Graphviz ``dot`` program, needed to render a diagram as SVG/PNG/PDF, is not installed.
    The one class for it: both diagram renderers (KAN plots and function trees) raise it."""
