"""The one Jinja environment: site overrides → core templates → plugin templates, plus prefixes.

``{% extends "core:base_portal.html" %}`` (or ``"<plugin>:…"``) always reaches the original,
so a site override can extend the template it replaces.

Pages are rendered from a per-language twin of the environment (:func:`localized`) whose
templates are compiled with what cannot change for the app's life already in place:

- ``{{ _("Literal") }}`` / ``gettext("Literal")`` become the translated text, escaped at compile
  time (``_()`` with arguments or a variable message still goes through ``gettext`` at render time);
- ``static("path")`` becomes ``/static/path``; ``{{ site_name }}`` and ``{{ html_lang }}`` become
  their values;
- ``{% include "literal.html" %}`` of a plain partial (no ``set``/``macro``/``block``…) is compiled
  into the including template, so no per-render context or template lookup is needed.

The template sources stay unchanged (``pybabel extract`` reads them as before); only the compiled
code differs, and it renders exactly what the plain environment renders (tests/test_templating.py).
``_``, ``gettext``, ``static``, ``site_name`` and ``html_lang`` are the suite's own: a template that
rebinds one (``set``, ``for``, ``macro``, ``import``…) keeps it unfolded, but a partial it includes
without inlining is compiled on its own and does not know.  An error inside an inlined partial is
reported at the partial's line number in the including template; the debug (auto-reload)
environment keeps real includes.  The twins also use a code generator and a context with cheaper
output and calls (:class:`SuiteCodeGenerator`, :class:`SuiteContext`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, Template, nodes, select_autoescape
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import TemplateNotFound
from jinja2.ext import Extension
from jinja2.lexer import (
    TOKEN_BLOCK_BEGIN,
    TOKEN_BLOCK_END,
    TOKEN_DOT,
    TOKEN_LPAREN,
    TOKEN_NAME,
    TOKEN_PIPE,
    TOKEN_RPAREN,
    TOKEN_STRING,
    TOKEN_VARIABLE_BEGIN,
    TOKEN_VARIABLE_END,
    Token,
    TokenStream,
)
from jinja2.runtime import Context
from markupsafe import escape

from .i18n import HTML_LANG, template_gettext
from .paths import TEMPLATES_DIR
from .plugins import Plugin

#: Functions whose call with one string literal is folded: ``_("…")``, ``gettext("…")``, ``static("…")``.
_FOLD_CALLS = frozenset({"_", "gettext", "static"})
#: Statements that can bind a name.
_BINDING_STATEMENTS = frozenset({"set", "for", "with", "macro", "call", "import", "from"})
#: Statements an inlined partial may use: they open no scope of their own that ``include`` would
#: have isolated (a ``for`` loop's variables are local to the loop either way).
_INLINE_STATEMENTS = frozenset({"if", "elif", "else", "endif", "for", "endfor", "include"})
#: Names that mean something else inside an included template than in the template including it.
_INLINE_FORBIDDEN_NAMES = frozenset({"self", "super", "caller", "varargs", "kwargs"})


class SuiteEnvironment(Environment):
    """The plain environment, able to hand out its per-language folded twins."""

    #: Set on the twins only: what the :class:`FoldConstants` extension folds in.
    suite_fold: _Fold | None = None

    def get_template(self, name: Any, parent: str | None = None, globals: Any = None) -> Template:
        """Jinja's ``get_template``, remembered for the app's life (templates never change then).

        Jinja's own cache is an LRU keyed by loader and name, consulted on every call: every page,
        every ``extends`` and every include asks again.  With auto-reload (debug) or extra globals,
        Jinja's lookup is used as it is.
        """
        if self.auto_reload or globals is not None or type(name) is not str:
            return super().get_template(name, parent, globals)
        key = name if parent is None else self.join_path(name, parent)
        loaded: dict[str, Template] = self.__dict__.setdefault("_suite_loaded", {})
        tmpl = loaded.get(key)
        if tmpl is None:
            tmpl = loaded[key] = super().get_template(name, parent, globals)
        return tmpl

    def localized(self, lang: str, site_name: str) -> Environment:
        """This environment's twin for ``lang`` (compiled once per template and language)."""
        key = (lang, site_name)
        twins: dict[tuple[str, str], Environment] = self.__dict__.setdefault("_suite_twins", {})
        twin = twins.get(key)
        if twin is None:
            twin = self.overlay(extensions=[FoldConstants])
            twin.code_generator_class = SuiteCodeGenerator
            twin.context_class = SuiteContext
            twin.__dict__["_suite_twins"] = {}
            twin.__dict__["_suite_loaded"] = {}
            twin.suite_fold = _Fold(template_gettext(lang)[0], site_name, HTML_LANG[lang], inline=not self.auto_reload)
            twins[key] = twin
        return twin


class _Fold:
    def __init__(self, gettext: Callable[..., str], site_name: str, html_lang: str, *, inline: bool) -> None:
        self.gettext = gettext
        self.names = {"site_name": site_name, "html_lang": html_lang}
        #: Inlining loses the partial's own line numbers in tracebacks and its auto-reload, so
        #: the debug (auto-reload) environment keeps real includes.
        self.inline = inline


def localized(env: Environment, lang: str, site_name: str) -> Environment:
    """The folded twin of ``env`` for ``lang`` (``env`` itself when it cannot fold)."""
    if isinstance(env, SuiteEnvironment):
        return env.localized(lang, site_name)
    return env


class FoldConstants(Extension):
    """Token-level folding of per-language constants (see the module docstring)."""

    def filter_stream(self, stream: TokenStream) -> TokenStream | Iterator[Token]:
        fold = getattr(self.environment, "suite_fold", None)
        if fold is None:
            return stream
        return iter(self._fold(list(stream), fold, stream.name, (stream.name,), frozenset()))

    @staticmethod
    def _literal_call(toks: list[Token], i: int) -> bool:
        """``toks[i]`` is ``_``/``gettext``/``static`` called with one string literal, as a plain name."""
        return (
            toks[i].value in _FOLD_CALLS
            and i + 3 < len(toks)
            and toks[i + 1].type == TOKEN_LPAREN
            and toks[i + 2].type == TOKEN_STRING
            and toks[i + 3].type == TOKEN_RPAREN
            and not (i and (toks[i - 1].type in (TOKEN_DOT, TOKEN_PIPE) or toks[i - 1].test("name:is")))
        )

    @staticmethod
    def _rebound(toks: list[Token], fold: _Fold) -> set[str]:
        """Folded names a statement of the template (re)binds (``set``, ``for``, ``macro``, ``import``…).

        They are left alone in that template (and in the partials inlined into it).
        """
        names = _FOLD_CALLS | fold.names.keys()
        rebound = set()
        statement = None
        for k, tok in enumerate(toks):
            if tok.type == TOKEN_BLOCK_BEGIN:
                statement = toks[k + 1].value if k + 1 < len(toks) else None
            elif tok.type == TOKEN_BLOCK_END:
                statement = None
            elif (
                statement in _BINDING_STATEMENTS
                and tok.type == TOKEN_NAME
                and tok.value in names
                and toks[k - 1].type != TOKEN_DOT
                and (toks[k + 1].type != TOKEN_LPAREN or toks[k - 1].test("name:macro"))  # a call is a use
            ):
                rebound.add(tok.value)
        return rebound

    def _fold(
        self,
        toks: list[Token],
        fold: _Fold,
        name: str | None,
        inlining: tuple[str | None, ...],
        rebound: frozenset[str],
    ) -> list[Token]:
        rebound = rebound | self._rebound(toks, fold)
        out: list[Token] = []
        i, n = 0, len(toks)
        while i < n:
            tok = toks[i]
            if tok.type == TOKEN_NAME and tok.value not in rebound:
                # _("…") / gettext("…") / static("…") with one literal argument and nothing else
                if self._literal_call(toks, i):
                    literal = toks[i + 2].value
                    value = f"/static/{literal}" if tok.value == "static" else fold.gettext(literal)
                    out.append(Token(tok.lineno, TOKEN_STRING, value))
                    i += 4
                    continue
                # {{ site_name }}, {{ html_lang }}
                if (
                    tok.value in fold.names
                    and out
                    and out[-1].type == TOKEN_VARIABLE_BEGIN
                    and i + 1 < n
                    and toks[i + 1].type == TOKEN_VARIABLE_END
                ):
                    out.append(Token(tok.lineno, TOKEN_STRING, fold.names[tok.value]))
                    i += 1
                    continue
            # {% include "partial.html" %} / {% include "partial.html" with context %}
            if fold.inline and tok.type == TOKEN_BLOCK_BEGIN and i + 3 < n:
                end = self._include_end(toks, i)
                if end is not None:
                    inlined = self._inline(toks[i + 2].value, name, fold, inlining, frozenset(rebound))
                    if inlined is not None:
                        out.extend(inlined)
                        i = end + 1
                        continue
            out.append(tok)
            i += 1
        return out

    @staticmethod
    def _include_end(toks: list[Token], i: int) -> int | None:
        """Index of the ``%}`` closing a ``{% include "literal" [with context] %}`` at ``i``."""
        if not (toks[i + 1].type == TOKEN_NAME and toks[i + 1].value == "include" and toks[i + 2].type == TOKEN_STRING):
            return None
        j = i + 3
        if toks[j].type == TOKEN_NAME and toks[j].value == "with":
            if not (j + 2 < len(toks) and toks[j + 1].type == TOKEN_NAME and toks[j + 1].value == "context"):
                return None
            j += 2
        return j if toks[j].type == TOKEN_BLOCK_END else None

    def _inline(
        self, target: str, parent: str | None, fold: _Fold, inlining: tuple[str | None, ...], rebound: frozenset[str]
    ) -> list[Token] | None:
        env = self.environment
        target = env.join_path(target, parent) if parent else target
        if target in inlining or env.loader is None:
            return None
        if callable(env.autoescape) and env.autoescape(target) != env.autoescape(parent):
            return None
        try:
            source, filename, _uptodate = env.loader.get_source(env, target)
        except TemplateNotFound:
            return None  # the include raises (or is ignored) at render time, as before
        source = env.preprocess(source, target, filename)
        toks = list(env.lexer.tokenize(source, target, filename))
        for k, tok in enumerate(toks):
            if tok.type == TOKEN_BLOCK_BEGIN and toks[k + 1].value not in _INLINE_STATEMENTS:
                return None
            if tok.type == TOKEN_NAME and tok.value in _INLINE_FORBIDDEN_NAMES:
                return None
        for ext in env.iter_extensions():
            if ext is not self and type(ext).filter_stream is not Extension.filter_stream:
                return None  # another extension filters tokens: keep it simple and include
        return self._fold(toks, fold, target, (*inlining, target), rebound)


try:
    from markupsafe import _escape_inner  # markupsafe 3: escape(s) is Markup(_escape_inner(s)) for a str
except ImportError:  # pragma: no cover - other markupsafe versions: no shortcut
    _escape_inner = escape
#: ``escape()`` of a plain string, as a plain string (what compiled templates call inline).
escape_inner = _escape_inner


class SuiteCodeGenerator(CodeGenerator):
    """Jinja's code generator with cheaper output and attribute access (same results).

    - Root and block functions collect their output and yield it once (:meth:`blockvisit`);
      ``{{ a }} and {{ b }}`` is one ``extend`` of a tuple, not three writes.
    - ``{{ x }}`` escapes a plain string with markupsafe's C function inline, anything else
      with ``escape()`` (a ``Markup`` stays as it is), without a Python call in between.
    - ``a.b`` tries Python's ``getattr`` inline and calls ``environment.getattr`` (item lookup,
      undefined) only when the attribute is missing (:meth:`visit_Getattr`).

    Each of these was measured on the portal pages (instructions per request under valgrind) and
    tests/test_templating.py checks the output is byte-identical to Jinja's own code generator.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Temporaries of the output expressions being written (None: Jinja's own form).
        self._escaping: list[str | None] = []

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        self.writeline(f"from {__name__} import escape_inner")
        super().visit_Template(node, frame)

    @optimizeconst
    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:
        """``a.b`` as ``(v if (v := getattr((o := a), "b", missing)) is not missing else environment.getattr(o, "b"))``.

        ``environment.getattr`` tries the attribute and then the item; on a hit the inline
        ``getattr`` gives the same value without that method call, on a miss it still decides.
        """
        if self.environment.is_async or self.environment.sandboxed:
            super().visit_Getattr(node, frame)
            return
        obj, value = self.temporary_identifier(), self.temporary_identifier()
        self.write(f"({value} if ({value} := getattr(({obj} := ")
        self.visit(node.node, frame)
        self.write(f"), {node.attr!r}, missing)) is not missing else environment.getattr({obj}, {node.attr!r}))")

    def blockvisit(self, body: Any, frame: Frame) -> None:
        """Root and block functions collect their output in a list and yield it once.

        Without this every output run travels up through each ``extends`` level and each block
        call as its own ``yield``; buffered, a block yields one string.  (An ``include … without
        context`` keeps the yielding form: Jinja writes it as a ``yield from``.)
        """
        body = list(body)
        if (
            frame.parent is None
            and frame.buffer is None
            and (frame.toplevel or frame.block_frame)
            and not any(
                not include.with_context
                for node in body
                for include in ([node] if isinstance(node, nodes.Include) else node.find_all(nodes.Include))
            )
        ):
            self.buffer(frame)
            super().blockvisit(body, frame)
            self.writeline(f"if {frame.buffer}: yield concat({frame.buffer})")
            return
        super().blockvisit(body, frame)

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.autoescape and not frame.eval_ctx.volatile and finalize.src is None:
            value = self.temporary_identifier()
            self._escaping.append(value)
            self.write(f"(escape_inner({value}) if type({value} := ")
        else:
            self._escaping.append(None)
            super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        value = self._escaping.pop()
        if value is None:
            super()._output_child_post(node, frame, finalize)
        else:
            self.write(f") is str else escape({value}))")

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        if frame.buffer is not None or frame.require_output_check:
            super().visit_Output(node, frame)
            return
        finalize = self._make_finalize()
        body: list[list[Any] | nodes.Expr] = []
        for child in node.nodes:  # constant folding as in CodeGenerator.visit_Output
            try:
                if not (finalize.const or isinstance(child, nodes.TemplateData)):
                    raise nodes.Impossible()
                const = self._output_child_to_const(child, frame, finalize)
            except (nodes.Impossible, Exception):
                body.append(child)
                continue
            if body and isinstance(body[-1], list):
                body[-1].append(const)
            else:
                body.append([const])
        if len(body) < 2:
            super().visit_Output(node, frame)
            return
        self.writeline("yield concat((")
        self.indent()
        for item in body:
            if isinstance(item, list):
                self.writeline(self._output_const_repr(item) + ",")
            else:
                self.newline(item)
                self._output_child_pre(item, frame, finalize)
                self.visit(item, frame)
                self._output_child_post(item, frame, finalize)
                self.write(",")
        self.outdent()
        self.writeline("))")


class SuiteContext(Context):
    """A template context whose calls of plain functions and C methods skip the pass-context checks."""

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        kind = type(__obj)
        if (
            kind is BuiltinFunctionType
            or (kind is FunctionType and "jinja_pass_arg" not in __obj.__dict__)
            or (
                kind is MethodType
                and type(__obj.__func__) is FunctionType
                and "jinja_pass_arg" not in __obj.__func__.__dict__
            )
        ):
            kwargs.pop("_block_vars", None)
            kwargs.pop("_loop_vars", None)
            try:
                return __obj(*args, **kwargs)
            except StopIteration:
                return __self.environment.undefined(
                    "value was undefined because a callable raised a StopIteration exception"
                )
        return Context.call(__self, __obj, *args, **kwargs)


def iso_day(value: date | None) -> str:
    """``{{ when|day }}``: the calendar day of a date or datetime, ``YYYY-MM-DD`` (what
    ``strftime("%Y-%m-%d")`` gives, several times cheaper); "" for None."""
    if value is None:
        return ""
    return _iso_day(value, value.tzinfo if type(value) is datetime else None)


def iso_datetime(value: datetime) -> str:
    """``value.isoformat()``, remembered (pages print the same publication dates over and over)."""
    return _iso_datetime(value, value.tzinfo)


# Remembered by value *and* zone: two aware datetimes of the same instant in different zones are
# equal (and hash alike) but print different days and offsets.
@lru_cache(maxsize=4096)
def _iso_day(value: date, _zone: Any) -> str:
    return (value.date() if isinstance(value, datetime) else value).isoformat()


@lru_cache(maxsize=4096)
def _iso_datetime(value: datetime, _zone: Any) -> str:
    return value.isoformat()


def build_environment(
    plugins: list[Plugin], site_dir: Path | None = None, debug: bool = False, *, enable_async: bool = True
) -> SuiteEnvironment:
    """Async environment for pages; a sync twin (``enable_async=False``) renders error pages."""
    plugin_dirs = {p.name: p.templates_dir for p in plugins if p.templates_dir}
    chain: list[Any] = []
    if site_dir and Path(site_dir).is_dir():
        chain.append(FileSystemLoader(str(site_dir)))
    chain.append(FileSystemLoader(str(TEMPLATES_DIR)))
    chain.extend(FileSystemLoader(str(path)) for path in plugin_dirs.values())
    # "core:x.html" / "<plugin>:x.html" always reach the shipped original of "<ns>/x.html".
    originals = {"core": FileSystemLoader(str(TEMPLATES_DIR / "core"))}
    originals.update({name: FileSystemLoader(str(path / name)) for name, path in plugin_dirs.items()})
    chain.append(PrefixLoader(originals, delimiter=":"))
    env = SuiteEnvironment(
        loader=ChoiceLoader(chain),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        auto_reload=debug,
        trim_blocks=True,
        lstrip_blocks=True,
        enable_async=enable_async,
    )
    env.policies["ext.i18n.trimmed"] = True
    env.filters["day"] = iso_day
    return env
