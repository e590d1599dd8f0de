"""kanir's exception types: every user-facing failure is a KanirError subclass with a clear message."""


class KanirError(Exception):
    """Base class of every error kanir raises on purpose."""


class WidthSpecError(KanirError, ValueError):
    """A width / mult_arity specification is malformed."""


class GraphError(KanirError, ValueError):
    """A KanGraph is inconsistent (raised by ``KanGraph.check``)."""


class DataError(KanirError, ValueError):
    """Input data has the wrong shape, dtype, or contains NaN/inf."""


class ModelFileError(KanirError, OSError):
    """A .kanir file is missing, damaged, truncated, foreign or of an unknown version."""


class LibraryError(KanirError, KeyError):
    """A symbolic function name is unknown or a registration is invalid."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class FormulaError(KanirError, ValueError):
    """A formula cannot be parsed or compiled; the message names the position or sub-expression."""


class IRSyntaxError(KanirError, ValueError):
    """kanir IR text (``kanir.parse_ir``) is malformed or does not fit together; ``line`` and
    ``column`` are 1-based and the message ends with the source line and a caret."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(message)
        self.line, self.column = line, column


class PassError(KanirError, ValueError):
    """A graph pass got invalid arguments (unknown layer, node index, ...)."""


class ArgumentError(KanirError, ValueError):
    """An argument of a kanir function has the wrong type, range or value; the message names it."""


class ModuleLoweringError(KanirError, ValueError):
    """A torch module cannot be lowered into a KanGraph (kanir.from_torch names the layer)."""


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
