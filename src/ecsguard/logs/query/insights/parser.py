"""Recursive-descent parser: query text -> a tuple of commands (ast.py).

Precedence, loosest first: or, and, not, comparison / like / in, + -, * / %, unary -, ^.
"""

from __future__ import annotations

from dataclasses import replace

from ecsguard.core.errors import UserError
from ecsguard.logs.query.insights import ast
from ecsguard.logs.query.insights.lexer import (
    DURATION,
    EOF,
    IDENT,
    NUMBER,
    OP,
    PIPE,
    QIDENT,
    REGEX,
    STRING,
    Token,
    syntax_error,
    tokenize,
)

COMMANDS = ("fields", "filter", "stats", "sort", "limit", "parse", "display", "dedup")
#: documented Insights commands this compiler does not offer (named in the error)
UNSUPPORTED = (
    "pattern",
    "diff",
    "unmask",
    "anomaly",
    "filterindex",
    "unnest",
    "lookup",
    "join",
    "source",
    "addtotals",
    "head",
    "tail",
)
KEYWORDS = frozenset(("and", "or", "not", "like", "in", "as", "by"))
_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")


def parse(text: str) -> tuple[ast.Command, ...]:
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # ------------------------------------------------------------------------------ helpers

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != EOF:
            self.i += 1
        return token

    def previous_end(self) -> int:
        return self.tokens[self.i - 1].end if self.i else 0

    def unexpected(self, expected: str) -> UserError:
        token = self.token
        return syntax_error(self.text, token.pos, f"unexpected {token.describe()}", expected)

    def at_op(self, *ops: str) -> bool:
        return self.token.kind == OP and self.token.text in ops

    def expect_op(self, op: str) -> Token:
        if not self.at_op(op):
            raise self.unexpected(f"expected {op!r}")
        return self.advance()

    def at_word(self, *words: str) -> bool:
        return self.token.is_word(*words)

    def name(self, what: str = "a field name") -> ast.Field:
        token = self.token
        if token.kind == QIDENT or (token.kind == IDENT and token.text.lower() not in KEYWORDS):
            self.advance()
            return ast.Field(token.pos, token.end, token.value)
        raise self.unexpected(f"expected {what}")

    def names(self) -> tuple[ast.Field, ...]:
        fields = [self.name()]
        while self.at_op(","):
            self.advance()
            fields.append(self.name())
        return tuple(fields)

    def item(self) -> ast.Item:
        expr = self.expr()
        if self.at_word("as"):
            self.advance()
            return ast.Item(expr, self.name("a name after 'as'").name)
        if isinstance(expr, ast.Field):
            return ast.Item(expr, expr.name)  # `trace.id` shows as trace.id
        return ast.Item(expr, self.text[expr.pos : expr.end])

    def items(self) -> tuple[ast.Item, ...]:
        items = [self.item()]
        while self.at_op(","):
            self.advance()
            items.append(self.item())
        return tuple(items)

    # ----------------------------------------------------------------------------- commands

    def query(self) -> tuple[ast.Command, ...]:
        if self.token.kind == EOF:
            raise UserError("the query is empty", "e.g. fields @timestamp, @message | limit 20")
        commands = [self.command()]
        while self.token.kind == PIPE:
            self.advance()
            commands.append(self.command())
        if self.token.kind != EOF:
            raise self.unexpected("expected | before the next command")
        return tuple(commands)

    def command(self) -> ast.Command:
        token = self.token
        word = token.text.lower() if token.kind == IDENT else ""
        if word in UNSUPPORTED:
            raise syntax_error(
                self.text,
                token.pos,
                f"the Insights command {token.text!r} is not supported",
                f"supported: {', '.join(COMMANDS)}",
            )
        if word not in COMMANDS:
            raise self.unexpected(f"expected a command: {', '.join(COMMANDS)}")
        self.advance()
        pos = token.pos
        if word == "fields":
            return ast.Fields(word, pos, self.items())
        if word == "display":
            return ast.Display(word, pos, self.names())
        if word == "dedup":
            return ast.Dedup(word, pos, self.names())
        if word == "filter":
            return ast.Filter(word, pos, self.expr())
        if word == "stats":
            aggregates = self.items()
            by: tuple[ast.Item, ...] = ()
            if self.at_word("by"):
                self.advance()
                by = self.items()
            return ast.Stats(word, pos, aggregates, by)
        if word == "sort":
            return ast.Sort(word, pos, self.sort_keys())
        if word == "limit":
            return ast.Limit(word, pos, self.count())
        return self.parse_command(pos)

    def sort_keys(self) -> tuple[ast.SortKey, ...]:
        keys = []
        while True:
            expr = self.expr()
            descending = True  # Insights' default, like its default @timestamp order
            if self.at_word("asc", "desc"):
                descending = self.advance().text.lower() == "desc"
            keys.append(ast.SortKey(expr, descending))
            if not self.at_op(","):
                return tuple(keys)
            self.advance()

    def count(self) -> int:
        token = self.token
        if token.kind != NUMBER or not isinstance(token.value, int) or token.value < 1:
            raise self.unexpected("limit takes a whole number of at least 1, e.g. limit 20")
        self.advance()
        return int(token.value)

    def parse_command(self, pos: int) -> ast.Parse:
        source: ast.Expr
        if self.token.kind in (STRING, REGEX):
            source = ast.Field(pos, pos, "@message")  # `parse "pattern"` reads @message
        else:
            source = self.expr()
        token = self.token
        if token.kind not in (STRING, REGEX):
            raise self.unexpected('expected a "glob * pattern" or a /regex/ with (?<name>...)')
        self.advance()
        pattern: ast.Literal | ast.Regex
        if token.kind == STRING:
            pattern = ast.Literal(token.pos, token.end, token.value)
        else:
            pattern = ast.Regex(token.pos, token.end, token.value)
        names: tuple[str, ...] = ()
        if self.at_word("as"):
            self.advance()
            names = tuple(field.name for field in self.names())
        return ast.Parse("parse", pos, source, pattern, names)

    # -------------------------------------------------------------------------- expressions

    def expr(self) -> ast.Expr:
        left = self.and_expr()
        while self.at_word("or"):
            self.advance()
            right = self.and_expr()
            left = ast.Binary(left.pos, right.end, "or", left, right)
        return left

    def and_expr(self) -> ast.Expr:
        left = self.not_expr()
        while self.at_word("and"):
            self.advance()
            right = self.not_expr()
            left = ast.Binary(left.pos, right.end, "and", left, right)
        return left

    def not_expr(self) -> ast.Expr:
        if self.at_word("not"):
            start = self.advance().pos
            operand = self.not_expr()
            return ast.Unary(start, operand.end, "not", operand)
        return self.comparison()

    def comparison(self) -> ast.Expr:
        left = self.additive()
        if self.at_op(*_COMPARISONS):
            op = self.advance().text
            right = self.additive()
            return ast.Binary(left.pos, right.end, op, left, right)
        if self.at_op("=~"):
            self.advance()
            pattern = self.additive()
            return ast.Like(left.pos, pattern.end, left, pattern, False)
        negated = False
        if self.at_word("not") and self.tokens[self.i + 1].is_word("like", "in"):
            self.advance()
            negated = True
        if self.at_word("like"):
            self.advance()
            pattern = self.additive()
            return ast.Like(left.pos, pattern.end, left, pattern, negated)
        if self.at_word("in"):
            self.advance()
            self.expect_op("[")
            items = [self.additive()]
            while self.at_op(","):
                self.advance()
                items.append(self.additive())
            end = self.expect_op("]").end
            return ast.In(left.pos, end, left, tuple(items), negated)
        return left

    def additive(self) -> ast.Expr:
        left = self.multiplicative()
        while self.at_op("+", "-"):
            op = self.advance().text
            right = self.multiplicative()
            left = ast.Binary(left.pos, right.end, op, left, right)
        return left

    def multiplicative(self) -> ast.Expr:
        left = self.unary()
        while self.at_op("*", "/", "%"):
            op = self.advance().text
            right = self.unary()
            left = ast.Binary(left.pos, right.end, op, left, right)
        return left

    def unary(self) -> ast.Expr:
        if self.at_op("-"):
            start = self.advance().pos
            operand = self.unary()
            return ast.Unary(start, operand.end, "-", operand)
        return self.power()

    def power(self) -> ast.Expr:
        base = self.primary()
        if self.at_op("^"):
            self.advance()
            exponent = self.unary()  # right-associative: 2 ^ 3 ^ 2 = 2 ^ 9
            return ast.Binary(base.pos, exponent.end, "^", base, exponent)
        return base

    def primary(self) -> ast.Expr:
        token = self.token
        if token.kind == NUMBER:
            self.advance()
            return ast.Literal(token.pos, token.end, token.value)
        if token.kind == STRING:
            self.advance()
            return ast.Literal(token.pos, token.end, token.value)
        if token.kind == REGEX:
            self.advance()
            return ast.Regex(token.pos, token.end, token.value)
        if token.kind == DURATION:
            self.advance()
            amount, unit = token.value
            return ast.Duration(token.pos, token.end, amount, unit)
        if self.at_op("("):
            self.advance()
            inner = self.expr()
            end = self.expect_op(")").end
            # the parentheses belong to the written text, e.g. a column named `(a + b) * 2`
            return replace(inner, pos=token.pos, end=end)
        is_name = token.kind == IDENT and token.text.lower() not in KEYWORDS
        if is_name and self.tokens[self.i + 1].kind == OP and self.tokens[self.i + 1].text == "(":
            return self.call()
        if token.kind in (IDENT, QIDENT):
            return self.name("an expression")
        raise self.unexpected("expected an expression")

    def call(self) -> ast.Call:
        name = self.advance()
        self.advance()  # (
        args: list[ast.Expr] = []
        if self.at_op("*"):
            star = self.advance()
            args.append(ast.Star(star.pos, star.end))
        elif not self.at_op(")"):
            args.append(self.expr())
            while self.at_op(","):
                self.advance()
                args.append(self.expr())
        end = self.expect_op(")").end
        return ast.Call(name.pos, end, name.text, tuple(args))
