"""The formula language: text such as ``"E = m0/sqrt(1 - v**2/c**2)"`` to exact sympy expressions.

The grammar is ``formula.lark`` (lark, LALR); this module turns its parse tree into sympy objects
and every problem into a :class:`~kanir.errors.FormulaError` that says where and what went wrong.

Examples
--------
>>> parse_expr("x**2/2 + 1.5e-3")
x**2/2 + 3/2000
>>> f = parse_formula("r = sqrt(x^2 + y^2); theta = atan(y/x)")
>>> f.outputs[0], f.variables
(('r', sqrt(x**2 + y**2)), (x, y))

Errors name the line and column, say what would have fitted, and end with the line and a caret:
``"2 * sin(x+)"`` gives "formula syntax error at line 1, column 11: unexpected ')'; expected a
number, a name, '(' or a unary sign", then ``  2 * sin(x+)`` and a ``^`` under the ``)``.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

import sympy
from lark import Lark, Token, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from ..errors import FormulaError, FormulaNameError, FormulaSyntaxError
from .functions import BY_TEXT, MAX_POWER, TABLE

__all__ = [
    "FUNCTIONS",
    "Formula",
    "FormulaError",
    "FormulaNameError",
    "FormulaSyntaxError",
    "parse_expr",
    "parse_formula",
]

#: Function names of the language -> (sympy function, number of arguments; None means 2 or more),
#: from the table shared with the compiler and the printer (kanir.grammar.functions).
FUNCTIONS: dict[str, tuple[Callable[..., sympy.Expr], int | None]] = {
    name: (f.sympy, f.arity) for name, f in BY_TEXT.items()}

#: Names that always mean a constant; they cannot name a variable, so printed text is unambiguous.
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "e": sympy.E}

_MAX_DIGITS = 1000  # digits of one number literal
_MAX_EXPONENT = 308  # |decimal exponent| of a literal, as for float64
_MAX_BITS = 4000  # size of an exact number computed from literals (about 1200 digits)
_FLOAT_MAX = sympy.Integer(int(sys.float_info.max))  # constants must fit a float64
_MAX_DEPTH = 100  # nesting of operators and calls; parentheses alone do not count
_LEAVES = ("name", "number")
_WIDTH = 72  # longest source excerpt shown under an error message
_UNDEFINED = (sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)
_COMPLEX_PARTS = (sympy.re, sympy.im, sympy.arg, sympy.conjugate)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "POW"}


@dataclass(frozen=True)
class Formula:
    """A parsed formula: named output expressions over an ordered tuple of input symbols."""

    outputs: tuple[tuple[str, sympy.Expr], ...]
    variables: tuple[sympy.Symbol, ...]
    #: the variable names the text mentions, even those that cancel out (as in ``0*x``)
    mentioned: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The output names, in order."""
        return tuple(name for name, _ in self.outputs)

    @property
    def expr(self) -> sympy.Expr:
        """The expression of a single-output formula (an error when there are several)."""
        if len(self.outputs) != 1:
            raise FormulaError(f"expected one expression, but the formula has {len(self.outputs)} "
                               f"outputs ({', '.join(self.names)}); use .outputs")
        return self.outputs[0][1]


def parse_formula(source, variables=None) -> Formula:
    """Read a formula from text, a sympy expression or Eq, or a list of those.

    ``variables`` (names or sympy Symbols, or one string of names separated by commas or spaces)
    fixes the input symbols and their order; any other name is then an error. Without it the
    inputs are the free symbols, sorted by name in natural order (x2 before x10).
    """
    try:
        return _parse_formula(source, variables)
    except FormulaError:
        raise
    except RecursionError:
        raise FormulaError("the formula is nested too deeply") from None
    except Exception as exc:  # never let a lark or sympy exception escape
        raise FormulaError(f"cannot read the formula: {type(exc).__name__}: {exc}") from exc


def parse_expr(source, variables=None) -> sympy.Expr:
    """Read a single expression (an optional ``name =`` is allowed and ignored)."""
    return parse_formula(source, variables).expr


# ------------------------------------------------------------------------------------ internals


@dataclass(frozen=True)
class _Output:
    """One output as read: its name (None for a default one), expression and source position."""

    name: str | None
    expr: sympy.Expr
    text: str | None = None
    line: int | None = None
    column: int | None = None


def _parse_formula(source, variables) -> Formula:
    fixed = _fixed_variables(variables)
    items = list(source) if isinstance(source, list | tuple) else [source]
    if not items:
        raise FormulaError("the formula is empty: an empty list was given")
    outputs: list[_Output] = []
    mentioned: dict[str, None] = {}
    for item in items:
        if isinstance(item, str):
            parsed, names = _parse_text(item, fixed)
            outputs += parsed
            mentioned.update(dict.fromkeys(names))
        else:
            outputs.append(_from_sympy(item))
    named = _name_outputs(outputs)
    return Formula(named, _input_symbols(named, fixed), tuple(mentioned))


def _fixed_variables(variables) -> dict[str, sympy.Symbol | str] | None:
    """The given variables by name (a name stays a str), or None when none were given."""
    if variables is None:
        return None
    if isinstance(variables, str):
        variables = [v for v in re.split(r"[\s,]+", variables) if v]
    elif isinstance(variables, sympy.Basic):
        variables = [variables]
    elif not isinstance(variables, Iterable):
        raise FormulaError(f"variables must be a list of names or sympy Symbols, got "
                           f"{type(variables).__name__} {variables!r}")
    fixed: dict[str, sympy.Symbol | str] = {}
    for v in variables:
        if isinstance(v, str):
            if not _NAME_RE.match(v):
                raise FormulaError(f"variable name {v!r} is not a valid name: use letters, digits "
                                   "and underscores, not starting with a digit")
        elif not isinstance(v, sympy.Symbol):
            raise FormulaError(f"variables must be names or sympy Symbols, got "
                               f"{type(v).__name__} {v!r}")
        name = v if isinstance(v, str) else v.name
        if name in CONSTANTS:
            raise FormulaError(reserved_name_message(name))
        if name in fixed:
            raise FormulaError(f"variable '{name}' is listed twice")
        fixed[name] = v
    return fixed


def _from_sympy(obj) -> _Output:
    """A sympy expression (or a number) as an unnamed output, a sympy Eq as a named one."""
    if not isinstance(obj, sympy.Basic) and not getattr(obj, "is_Matrix", False):
        try:
            obj = sympy.sympify(obj, strict=True)
        except (sympy.SympifyError, TypeError, ValueError) as exc:
            raise FormulaError(f"a formula must be text or a sympy expression, got "
                               f"{type(obj).__name__} {obj!r}") from exc
    name = None
    if isinstance(obj, sympy.Equality):
        if not isinstance(obj.lhs, sympy.Symbol):
            raise FormulaError(f"a sympy Eq needs the output symbol on its left-hand side, "
                               f"got {obj}")
        name, obj = obj.lhs.name, obj.rhs
    if not isinstance(obj, sympy.Expr) or getattr(obj, "is_Matrix", False):
        raise FormulaError(f"a formula must be text or a sympy expression or Eq, got "
                           f"{type(obj).__name__} {obj}")
    bad = [u for u in _UNDEFINED if obj.has(u)]
    if bad:
        raise FormulaError(f"the sympy expression {obj} contains the undefined value {bad[0]}")
    for s in sorted(obj.free_symbols, key=sympy.default_sort_key):
        if s.name in CONSTANTS:
            raise FormulaError(f"the sympy expression {obj} has a symbol named '{s.name}': "
                               + reserved_name_message(s.name))
    return _Output(name, obj)


def reserved_name_message(name: str) -> str:
    """Why the constant name ``name`` ('e', 'pi') cannot name a variable."""
    what = "Euler's number" if name == "e" else "the number pi"
    return (f"'{name}' cannot name a variable: in formulas '{name}' is always {what}, so a "
            f"variable '{name}' would print like the constant and read back as it; rename the "
            f"variable (e.g. '{name}_')")


def _name_outputs(outputs: list[_Output]) -> tuple[tuple[str, sympy.Expr], ...]:
    """Give unnamed outputs their default names y_1, y_2, ... and reject duplicate names."""
    seen: set[str] = set()
    named = []
    for i, out in enumerate(outputs, 1):
        name = out.name or f"y_{i}"
        if name in seen:
            where = f" at line {out.line}, column {out.column}" if out.text is not None else ""
            note = "" if out.name else f" (output {i} has no name, so it is called '{name}')"
            raise FormulaError(_located(f"output '{name}' is defined twice{where}{note}",
                                        out.text, out.line, out.column))
        seen.add(name)
        named.append((name, out.expr))
    return tuple(named)


def _input_symbols(outputs, fixed) -> tuple[sympy.Symbol, ...]:
    """The given variables in order, else the free symbols sorted by name.

    A variable given by name is the expression's symbol of that name (so a sympy input keeps its
    assumptions), or a plain Symbol; any other free symbol is an error.
    """
    free: dict[str, sympy.Symbol] = {}
    for _, expr in outputs:
        for s in sorted(expr.free_symbols, key=sympy.default_sort_key):
            free.setdefault(s.name, s)
    if fixed is None:
        return tuple(sorted(free.values(), key=_natural_key))
    symbols = tuple(free.get(v, sympy.Symbol(v)) if isinstance(v, str) else v
                    for v in fixed.values())
    for name, expr in outputs:
        for s in sorted(expr.free_symbols - set(symbols), key=sympy.default_sort_key):
            raise FormulaNameError(f"unknown name '{s}' in the expression of output '{name}'; "
                                   f"{_variables_note(fixed)}", str(s))
    return symbols


def _natural_key(symbol: sympy.Symbol):
    """Sort key putting x2 before x10: digit runs compare as numbers."""
    parts = re.split(r"(\d+)", symbol.name)
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], sympy.default_sort_key(symbol)


def _variables_note(fixed) -> str:
    if not fixed:
        return "no variables were given"
    return "the variables are " + ", ".join(fixed)


# --------------------------------------------------------------------------------- text parsing


class _BracketError(Exception):
    """Raised by the postlexer on an unmatched ')' or an unclosed '('."""

    def __init__(self, message: str, token: Token):
        super().__init__(message)
        self.token = token


class _Brackets:
    """Postlexer: drop new lines inside parentheses and report unbalanced ones where they are."""

    always_accept = ()

    def process(self, stream):
        opened: list[Token] = []
        for tok in stream:
            if tok.type == "LPAR":
                opened.append(tok)
            elif tok.type == "RPAR":
                if not opened:
                    raise _BracketError("unmatched ')'", tok)
                opened.pop()
            elif tok.type == "_SEP" and tok.value == "\n" and opened:
                continue
            yield tok
        if opened:
            raise _BracketError(_never_closed(opened[-1]), opened[-1])


def _never_closed(tok: Token) -> str:
    return f"'(' opened at line {tok.line}, column {tok.column} is never closed"


@cache
def _lexer() -> Lark:
    """The formula lexer without the postlexer, to look at raw brackets after an error."""
    grammar = (Path(__file__).with_name("formula.lark")).read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="basic")


def _unclosed_across_lines(text: str, pos: int) -> Token | None:
    """The '(' that is never closed and, before ``pos``, was followed by a new line: the parser
    then reads the next lines as part of the bracket, so the error at ``pos`` is really that
    bracket's. None when there is no such bracket."""
    opened: list[list] = []  # [token, a new line followed it before pos]
    try:
        for tok in _lexer().lex(text):
            if tok.type == "LPAR":
                opened.append([tok, False])
            elif tok.type == "RPAR" and opened:
                opened.pop()
            elif tok.type == "_SEP" and tok.value == "\n" and tok.start_pos < pos:
                for entry in opened:
                    entry[1] = True
    except Exception:  # a bad character later on: what was read decides
        pass
    suspects = [tok for tok, spans_line in opened if spans_line and tok.start_pos < pos]
    return suspects[-1] if suspects else None


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("formula.lark")).read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="basic", postlex=_Brackets(),
                propagate_positions=True, maybe_placeholders=False)


def _parse_text(text: str, fixed) -> tuple[list[_Output], list[str]]:
    """Parse one text into its outputs and the variable names it mentions; every problem becomes
    a positioned FormulaError."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    except _BracketError as exc:
        tok = exc.token
        raise FormulaSyntaxError(_located(f"formula syntax error at line {tok.line}, column "
                                          f"{tok.column}: {exc}", text, tok.line, tok.column),
                                 tok.line, tok.column) from None
    _check_depth(tree, text)
    builder = _Builder(text, fixed)
    try:
        outputs = builder.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, FormulaError | RecursionError):
            raise exc.orig_exc from None
        raise FormulaError(f"cannot build the formula: {type(exc.orig_exc).__name__}: "
                           f"{exc.orig_exc}") from exc.orig_exc
    if not outputs:
        raise FormulaSyntaxError("the formula is empty; write an expression such as 'x**2 + 1'",
                                 1, 1, ("an expression",))
    return outputs, builder.mentioned


def _check_depth(tree: Tree, text: str) -> None:
    """Reject absurdly deep nesting up front (sympy would take long, then overflow the stack)."""
    def inner(node):
        return [c for c in node.children if isinstance(c, Tree) and c.data not in _LEAVES]

    stack = [(expr, 1) for statement in tree.children for expr in inner(statement)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            line, column = node.meta.line, node.meta.column
            message = f"the formula is nested more than {_MAX_DEPTH} levels deep at line {line}, " \
                      f"column {column}"
            raise FormulaSyntaxError(_located(message, text, line, column), line, column)
        stack += [(child, depth + 1) for child in inner(node)]


def _syntax_error(exc: UnexpectedInput, text: str) -> FormulaSyntaxError:
    """A FormulaSyntaxError in plain words from a lark error."""
    line, column = exc.line, exc.column
    pos = exc.token.start_pos if isinstance(exc, UnexpectedToken) else exc.pos_in_stream
    if isinstance(pos, int):
        paren = _unclosed_across_lines(text, pos)
        if paren is not None:
            message = f"formula syntax error at line {paren.line}, column {paren.column}: " \
                      f"{_never_closed(paren)}"
            return FormulaSyntaxError(_located(message, text, paren.line, paren.column),
                                      paren.line, paren.column, ("')'",))
    try:
        names = set(exc.interactive_parser.accepts())
    except Exception:  # no parser state: fall back to what lark listed
        names = set(getattr(exc, "expected", None) or ())
    expected = _expected_words(names)
    hint = ""
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            line, column = tok.end_line or 1, tok.end_column or 1
        what = f"unexpected {_describe(tok)}"
        prev = _previous_token(text, tok.start_pos) if tok.type != "$END" else None
        if prev is not None and prev.end_pos == tok.start_pos and "NUMBER" == tok.type == prev.type:
            line, column, expected = prev.line, prev.column, ()
            what = f"malformed number '{prev.value}{tok.value}'"
        elif prev is not None and "an operator" in expected and tok.type in ("NAME", "NUMBER",
                                                                             "LPAR"):
            left = "(...)" if prev.type == "RPAR" else prev.value
            right = "(...)" if tok.type == "LPAR" else tok.value
            hint = f" (implicit multiplication is not supported: write '{left}*{right}')"
    elif isinstance(exc, UnexpectedCharacters):
        what = f"unexpected character {text[exc.pos_in_stream]!r}"
    else:
        what = "unexpected input"
    message = f"formula syntax error at line {line}, column {column}: {what}"
    if expected:
        message += f"; expected {_join_words(expected)}"
    return FormulaSyntaxError(_located(message + hint, text, line, column), line, column, expected)


def _expected_words(names: set[str]) -> tuple[str, ...]:
    """What the parser would have accepted, in words, from lark terminal names."""
    if names & {"NUMBER", "NAME"}:  # the start of an operand
        return ("a number", "a name", "'('", "a unary sign")
    words = []
    if names & _OPERATORS:
        words.append("an operator")
    if "COMMA" in names:
        words.append("','")
    if "RPAR" in names:
        words.append("')'")
    if names & {"$END", "_SEP"}:
        words.append("the end of the expression")
    return tuple(words)


def _join_words(words: tuple[str, ...]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of the formula"
    if tok.type == "_SEP":
        return "end of the line" if tok.value == "\n" else "';'"
    if tok.type in ("NUMBER", "NAME"):
        return f"{tok.type.lower()} '{tok.value}'"
    return f"'{tok.value}'"


def _previous_token(text: str, pos: int) -> Token | None:
    """The token just before character ``pos`` (for hints), or None."""
    prev = None
    try:
        for tok in _parser().lex(text):
            if tok.start_pos >= pos:
                break
            prev = tok
    except Exception:  # the text has other problems further on; what was read is enough
        pass
    return prev


def _located(message: str, text: str | None, line: int | None, column: int | None) -> str:
    """``message`` followed by the source line and a caret under ``column``, when known."""
    if text is None or line is None or column is None:
        return message
    lines = text.split("\n")
    src = lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""
    start = 0
    if len(src) > _WIDTH:
        start = max(0, min(column - 1 - _WIDTH // 2, len(src) - _WIDTH))
    shown = src[start:start + _WIDTH]
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + _WIDTH < len(src) else ""
    pad = "".join("\t" if c == "\t" else " " for c in prefix + shown[:column - 1 - start])
    return f"{message}\n  {prefix}{shown}{suffix}\n  {pad}^"


def _at(tok: Token) -> str:
    return f"at line {tok.line}, column {tok.column}"


class _Builder(Transformer_NonRecursive):
    """Parse tree -> list of _Output with exact sympy expressions, checking names and values."""

    def __init__(self, text: str, fixed: dict[str, sympy.Symbol | str] | None):
        super().__init__()
        self._text, self._fixed = text, fixed
        self._big: tuple[Token, str] | None = None  # where a too-large constant first appeared
        self.mentioned: list[str] = []  # variable names in order of first use

    def _error(self, problem: str, tok: Token, hint: str = "", name: str | None = None):
        """A FormulaError (a FormulaNameError when ``name`` is given) located at ``tok``."""
        message = _located(f"{problem} {_at(tok)}{hint}", self._text, tok.line, tok.column)
        if name is None:
            return FormulaError(message)
        return FormulaNameError(message, name, tok.line, tok.column)

    # statements

    def start(self, outputs):
        return list(outputs)

    def named(self, children):
        tok, expr = children
        self._check_float_range(expr, tok)
        return _Output(str(tok), expr, self._text, tok.line, tok.column)

    @v_args(meta=True)
    def unnamed(self, meta, children):
        self._check_float_range(children[0], meta)
        return _Output(None, children[0], self._text, meta.line, meta.column)

    def _check_float_range(self, expr: sympy.Expr, start) -> None:
        """Every constant of the finished expression must fit a float64; a too-large one is
        reported where it first appeared (a larger intermediate value that cancels is fine)."""
        big = _too_large(expr)
        where, self._big = self._big, None
        if big is None:
            return
        tok, what = where if where is not None else (start, "the expression")
        problem = (f"{what} gives the constant {_approx(big)}, which is too large for a float64 "
                   f"(the largest is about 1.8e308)")
        raise self._error(problem, tok)

    # leaves

    def number(self, children):
        tok = children[0]
        value = Decimal(str(tok))
        sign, digits, _ = value.as_tuple()
        shown = tok.value if len(tok.value) <= 24 else tok.value[:20] + "..."
        if len(digits) > _MAX_DIGITS:
            raise self._syntax(f"number '{shown}' has more than {_MAX_DIGITS} digits", tok)
        if value == 0:
            return sympy.Integer(0)
        if abs(value.adjusted()) > _MAX_EXPONENT:
            raise self._syntax(f"number '{shown}' is out of range: numbers must lie between "
                               f"1e-{_MAX_EXPONENT} and 1e{_MAX_EXPONENT} in size", tok)
        number = sympy.Rational(*value.as_integer_ratio())
        if abs(number) > _FLOAT_MAX:
            raise self._syntax(f"number '{shown}' is too large for a float64 (the largest is "
                               f"about 1.8e308)", tok)
        return number

    def _syntax(self, what: str, tok: Token) -> FormulaSyntaxError:
        message = f"formula syntax error {_at(tok)}: {what}"
        return FormulaSyntaxError(_located(message, self._text, tok.line, tok.column),
                                  tok.line, tok.column)

    def name(self, children):
        tok = children[0]
        name = str(tok)
        fixed = self._fixed
        if fixed is not None and name in fixed:
            v = fixed[name]
            self._mention(name)
            return sympy.Symbol(v) if isinstance(v, str) else v
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise self._error(f"function '{name}' is used without an argument", tok,
                              f"; write {name}(...)", name)
        if fixed is None:
            self._mention(name)
            return sympy.Symbol(name)
        close = difflib.get_close_matches(name, list(fixed) + list(CONSTANTS), n=1)
        hint = f"did you mean '{close[0]}'?" if close else _variables_note(fixed)
        raise self._error(f"unknown name '{name}'", tok, f"; {hint}", name)

    def _mention(self, name: str) -> None:
        if name not in self.mentioned:
            self.mentioned.append(name)

    def call(self, children):
        tok, *args = children
        name = str(tok)
        if name not in FUNCTIONS:
            raise self._error(f"unknown function '{name}'", tok,
                              _unknown_function_hint(name, self._fixed), name)
        fn, arity = FUNCTIONS[name]
        if arity is not None and len(args) != arity:
            plural = "" if arity == 1 else "s"
            message = f"{name} takes {arity} argument{plural}, got {len(args)}"
        elif arity is None and len(args) < 2:
            message = f"{name} takes at least 2 arguments, got {len(args)}"
        else:
            value = fn(*args)
            if value.has(*_COMPLEX_PARTS) and not any(a.has(*_COMPLEX_PARTS) for a in args):
                # Variables are meant real, but plain Symbols are complex to sympy, which would
                # turn abs(exp(x)) into exp(re(x)): keep the call as written instead.
                value = fn(*args, evaluate=False)
            return self._defined(value, f"'{name}'", tok)
        raise self._error(message, tok, name=name)

    # operators

    def sign(self, children):
        op, operand = children
        return -operand if op.type == "MINUS" else operand

    def power(self, children):
        base, op, exponent = children
        if exponent.is_number and not base.is_number and exponent.is_Rational and \
                abs(exponent) > MAX_POWER:
            raise self._error(f"the exponent {_approx(exponent)} is too large: a power of a "
                              f"variable needs an exponent between -{MAX_POWER} and {MAX_POWER}",
                              op)
        if base.is_Rational and exponent.is_Rational:
            bits = max(abs(base.p).bit_length(), base.q.bit_length()) - 1
            if abs(exponent) * bits > _MAX_BITS:
                raise self._error("the power gives a number too large to keep exactly", op)
        return self._defined(base**exponent, f"'{op}'", op)

    def sum(self, children):
        # One Add for the whole chain: the same result as adding term by term, in linear time.
        terms = [children[0]]
        for op, rhs in zip(children[1::2], children[2::2]):
            terms.append(rhs if op.type == "PLUS" else -rhs)
        return self._defined(sympy.Add(*terms), f"'{children[1]}'", children[1])

    def product(self, children):
        acc = children[0]
        for op, rhs in zip(children[1::2], children[2::2]):
            if op.type == "SLASH" and rhs.is_zero:
                raise self._error("division by zero", op)
            acc = self._defined(acc * rhs if op.type == "STAR" else acc / rhs, f"'{op}'", op)
        return acc

    def _defined(self, value: sympy.Expr, what: str, tok: Token) -> sympy.Expr:
        """``value`` if it is finite and of sane size; else an error at ``tok``. Notes where a
        constant first exceeds the float64 range (an error only if it stays in the result)."""
        if value in _UNDEFINED:
            raise self._error(f"{what} gives the undefined value {value}", tok)
        if self._big is None and _too_large(value) is not None:
            self._big = (tok, what)
        for term in sympy.Add.make_args(value):
            coeff = term.as_coeff_Mul()[0]
            if coeff.is_Rational and max(abs(coeff.p).bit_length(),
                                         coeff.q.bit_length()) > _MAX_BITS:
                raise self._error(f"{what} gives a number too large to keep exactly", tok)
        return value


def _too_large(expr: sympy.Expr) -> sympy.Expr | None:
    """A constant of ``expr`` whose size exceeds the float64 range, or None."""
    for sub in sympy.preorder_traversal(expr):
        if not sub.is_number:
            continue
        if sub.is_Rational:
            if abs(sub) > _FLOAT_MAX:
                return sub
        elif not sub.has(sympy.Symbol):
            try:
                size = abs(sub.evalf(15))
                if size.is_finite is False or size > _FLOAT_MAX:
                    return sub
            except (TypeError, ValueError):
                pass
    return None


def _approx(v: sympy.Expr) -> str:
    """A short text of a possibly huge exact number: 10**100 as 1.0e+100."""
    if v.is_Integer and abs(v) < 10**12:
        return str(v)
    return str(v.evalf(3))


def _unknown_function_hint(name: str, fixed) -> str:
    """The likeliest fix for a call of the unknown function ``name``."""
    close = difflib.get_close_matches(name.lower(), list(FUNCTIONS), n=1)
    if close and close[0] != name:
        return f"; did you mean '{close[0]}'?"
    if fixed is not None and name in fixed:
        return f"; '{name}' is a variable: write '{name}*(...)' to multiply"
    return f"; the functions are {', '.join(sorted({f.text for f in TABLE}))}"
