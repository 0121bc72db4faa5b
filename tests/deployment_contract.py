"""What the suite asks of a deployment, read from the code, against what ``docs/deployment-contract.md`` lists.

The deployment contract is what a QA team reads before pointing the suite at its own platform. It is checked here,
not remembered: every HTTP call the library can make on the AWS target (method and path template), every session
field, error code and HTTP status the AWS path names, must be in that page.

- **Calls** are read from the library's source (``ast``): every ``….api.request(method, path)`` (the session-API
  client of ``core/http_client.py``) and every ``HttpRequest(method, path)`` (the load engine). A method or path
  handed in by the caller (``ApiComponent._call``, ``faults/clients.timed_request``, a dataclass field such
  as ``RetryingClient.path``, a keyword argument) is followed to each call site, in Python and, for a keyword, in
  the suites and resources. A path read from a local variable, a helper's return value or an f-string is
  evaluated; ``{…}`` stands for a value (a session id, a file path). What cannot be read is a problem, not a pass.
- **Platform URLs built beside the client** (``PLATFORM_API_URL`` + a path) skip the contract mapping,
  authentication and TLS: outside embedded-only code each must be listed in ``OWN_URL`` with its reason.
- **Fields, codes, statuses**: the session fields (``docs/openapi.yaml``'s ``Session`` and the session object of
  ``docs/platform-contract.md``), the error codes of ``docs/platform-contract.md`` and HTTP statuses that the
  library's code names (docstrings left out), and those that the tests which run on AWS name in their steps
  (suites and resources, followed into user keywords; tests tagged ``needs-…`` are skipped on AWS).

Code that only runs on the embedded platform is left out: ``targets/embedded/`` and keywords tagged
``embedded-only`` (with the functions nested in them). The doc lists a call as ```METHOD /path``` (``{…}`` for a
value, ``?name=`` for a query), a field or code as ```name```, a status as the number.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml
from PlatformLibrary.targets.placement import embedded_only_reason
from robot.running import TestSuiteBuilder
from robot.running.builder import ResourceFileBuilder

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "libraries" / "PlatformLibrary"
DOC = ROOT / "docs" / "deployment-contract.md"
PLATFORM_DOC = ROOT / "docs" / "platform-contract.md"
OPENAPI = ROOT / "docs" / "openapi.yaml"

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"})
EMBEDDED_MODULES = ("targets/embedded/",)
# Call sites that send no request of their own, with the reason.
RESENDS = {
    "load/keywords.py:_in_contract.translated": "re-sends a scenario's request (counted where it is built) in the "
    "deployment's names",
}
# Code that builds a URL on PLATFORM_API_URL itself, outside embedded-only code, with the reason it may.
OWN_URL = {
    "load/keywords.py:LoadKeywords._build": "the load engine's base URL: its requests are HttpRequest objects (checked "
    "here) translated by _in_contract",
    "faults/proxy.py:FaultProxyKeywords.ensure_alb_hop_on_toxiproxy": "compares the URL with the Toxiproxy hop; "
    "sends nothing",
}
# Modules whose statuses are another server's, or HTTP's own framing, not the platform's answers.
OTHER_HTTP = {
    "faults/toxiproxy.py": "the fault proxy's admin API",
    "load/engine.py": "HTTP/1.1 framing (which answers carry a body) and outcome classes",
}


# --- the source
@dataclass(eq=False)
class Func:
    """A function, method, nested function or dataclass constructor of the library."""

    module: str  # relative to libraries/PlatformLibrary, e.g. "sessions/api.py"
    qualname: str  # "ApiComponent._call", "_in_contract.translated", "RetryingClient" (a constructor)
    cls: str | None
    node: ast.FunctionDef | ast.AsyncFunctionDef | None  # None: a dataclass's generated __init__
    params: list[str]
    defaults: dict[str, ast.expr]
    keyword: str | None  # the Robot name when decorated with @keyword
    embedded_only: bool
    parent: Func | None = None
    fields: frozenset[str] = frozenset()  # a constructor: its dataclass fields (``self.<field>`` in its methods)

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    @property
    def where(self) -> str:
        return f"{self.module}:{self.qualname}"

    @property
    def is_constructor(self) -> bool:
        return self.node is None


@dataclass(frozen=True)
class Ref:
    """A value the caller hands in: parameter ``name`` of ``owner``."""

    owner: Func
    name: str


class Unreadable(Exception):
    """The checker cannot tell what an expression holds."""


def keyword_title(name: str) -> str:
    return " ".join(part.capitalize() for part in name.split("_"))


def _normalize_keyword(name: str) -> str:
    return re.sub(r"[\s_]", "", name).lower()


def _keyword_decorator(node: ast.AST) -> tuple[str, list[str]] | None:
    """``(robot name, tags)`` of a function decorated with ``@keyword``, else ``None``."""
    for decorator in getattr(node, "decorator_list", []):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == "keyword":
            call = decorator if isinstance(decorator, ast.Call) else ast.Call(target, [], [])
            named = {kw.arg: kw.value for kw in call.keywords}
            name = call.args[0] if call.args else named.get("name")
            tags = named.get("tags")
            return (
                name.value if isinstance(name, ast.Constant) else keyword_title(node.name),  # type: ignore[attr-defined]
                [e.value for e in tags.elts if isinstance(e, ast.Constant)]
                if isinstance(tags, ast.List | ast.Tuple)
                else [],
            )
    return None


def _is_dataclass(node: ast.ClassDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "dataclass")
        or (isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "dataclass")
        for d in node.decorator_list
    )


class Library:
    """Every function of the library and every call between them, by name."""

    def __init__(self, root: Path = LIBRARY):
        self.root = root
        self.funcs: list[Func] = []
        self.trees: dict[str, ast.Module] = {}
        self.owner_of: dict[ast.AST, Func] = {}  # every node inside a function -> the innermost function
        for path in sorted(root.rglob("*.py")):
            module = path.relative_to(root).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            self.trees[module] = tree
            self._collect(module, tree.body, None, None, module.startswith(EMBEDDED_MODULES))
        self.by_name: dict[str, list[Func]] = {}
        for func in self.funcs:
            self.by_name.setdefault(func.name, []).append(func)

    def _collect(self, module: str, body: list[ast.stmt], cls: str | None, parent: Func | None, embedded: bool):
        for node in body:
            if isinstance(node, ast.ClassDef):
                if _is_dataclass(node):
                    names = [s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and s.simple]
                    defaults = {
                        s.target.id: s.value for s in node.body if isinstance(s, ast.AnnAssign) and s.value is not None
                    }
                    ctor = Func(module, node.name, node.name, None, names, defaults, None, embedded, parent)
                    ctor.fields = frozenset(names)
                    self.funcs.append(ctor)
                self._collect(module, node.body, node.name, parent, embedded)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                robot_name, tags = _keyword_decorator(node) or (None, [])
                args = node.args
                positional = [a.arg for a in [*args.posonlyargs, *args.args]]
                defaults = dict(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
                defaults |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None}
                params = [p for p in positional if p not in ("self", "cls")]
                params += [args.vararg.arg] if args.vararg else []  # what a Robot call's further arguments bind to
                params += [a.arg for a in args.kwonlyargs]
                qualname = f"{parent.qualname}.{node.name}" if parent else f"{cls}.{node.name}" if cls else node.name
                func = Func(
                    module,
                    qualname,
                    cls if parent is None else parent.cls,
                    node,
                    params,
                    defaults,
                    robot_name,
                    embedded or "embedded-only" in tags,
                    parent,
                )
                self.funcs.append(func)
                for child in _own_nodes(node):
                    self.owner_of[child] = func
                self._collect(module, node.body, cls, func, func.embedded_only)

    # -------------------------------------------------------------- who calls whom
    def callees(self, call: ast.Call, caller: Func | None) -> list[Func]:
        target = call.func
        if isinstance(target, ast.Name):
            functions = self.by_name.get(target.id, [])
            return [f for f in functions if f.parent is None and (f.cls is None or f.is_constructor)]
        if isinstance(target, ast.Attribute):
            candidates = [f for f in self.by_name.get(target.attr, []) if f.cls is not None and f.node is not None]
            if isinstance(target.value, ast.Name) and target.value.id in ("self", "cls") and caller is not None:
                own = [f for f in candidates if f.module == caller.module and f.cls == caller.cls]
                return own or candidates
            return candidates
        return []

    @cache  # noqa: B019 - one Library per run
    def call_sites(self, func: Func) -> list[tuple[ast.Call, Func | None]]:
        """Every call of ``func`` in the library, with the function it is made in (``None``: module level)."""
        sites = []
        for tree in self.trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    caller = self.owner_of.get(node)
                    if any(f is func for f in self.callees(node, caller)):
                        sites.append((node, caller))
        return sites

    def nodes(self) -> Iterator[tuple[ast.AST, Func | None, str]]:
        """Every node of the library's code with its function and module, docstrings left out."""
        skipped: set[ast.AST] = set()  # docstrings, and decorators (keyword names and tags)
        for tree in self.trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
                    first = node.body[0]
                    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                        skipped.add(first.value)
                for decorator in getattr(node, "decorator_list", []):
                    skipped |= set(ast.walk(decorator))
        for module, tree in self.trees.items():
            for node in ast.walk(tree):
                if node not in skipped:
                    yield node, self.owner_of.get(node), module


def _own_nodes(function: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``function``'s body, not those of the functions and classes nested in it."""
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))


def _embedded_only(func: Func | None, module: str) -> bool:
    return module.startswith(EMBEDDED_MODULES) or (func is not None and func.embedded_only)


# --- evaluation
class Evaluator:
    """Evaluates a method or path expression to its possible texts, following values into callers."""

    def __init__(self, library: Library, robot: RobotCalls):
        self.library = library
        self.robot = robot

    def value(self, expr: ast.expr, ctx: Func | None, depth: int = 0) -> list[str] | Ref:
        """Possible texts of ``expr`` in ``ctx``, or the parameter it comes from; raises ``Unreadable``."""
        if depth > 12:
            raise Unreadable(ast.unparse(expr))
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return [expr.value]
        if isinstance(expr, ast.JoinedStr):
            parts: list[list[str]] = []
            for part in expr.values:
                if isinstance(part, ast.Constant):
                    parts.append([str(part.value)])
                else:
                    parts.append(self._embedded(part.value, ctx, depth))
            return ["".join(p) for p in itertools.product(*parts)]
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            left, right = self._embedded(expr.left, ctx, depth), self._embedded(expr.right, ctx, depth)
            return [a + b for a in left for b in right]
        if isinstance(expr, ast.Name) and ctx is not None:
            return self._name(expr.id, ctx, depth)
        if (
            isinstance(expr, ast.Attribute)
            and isinstance(expr.value, ast.Name)
            and expr.value.id == "self"
            and ctx is not None
        ):
            ctor = self._constructor(ctx)
            if ctor is not None and expr.attr in ctor.fields:
                return Ref(ctor, expr.attr)
        if isinstance(expr, ast.Call):
            return self._returned(expr, ctx, depth)
        raise Unreadable(ast.unparse(expr))

    def _embedded(self, expr: ast.expr, ctx: Func | None, depth: int) -> list[str]:
        """A value inside a path: what it holds when that can be told, else ``{}`` (an id, a file name ...)."""
        try:
            found = self.value(expr, ctx, depth + 1)
        except Unreadable:
            return ["{}"]
        if isinstance(found, Ref):
            return ["{}"]
        return [v if v.startswith("/") or not v else "{}" for v in found]

    def _constructor(self, ctx: Func) -> Func | None:
        for func in self.library.by_name.get(ctx.cls or "", []):
            if func.is_constructor and func.module == ctx.module:
                return func
        return None

    def _name(self, name: str, ctx: Func, depth: int) -> list[str] | Ref:
        scope: Func | None = ctx
        while scope is not None:
            assigned = [
                node.value
                for node in ast.walk(scope.node)
                if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
                and self.library.owner_of.get(node) is scope
            ]
            if assigned:
                values: list[str] = []
                for expr in assigned:
                    found = self.value(expr, scope, depth + 1)
                    if isinstance(found, Ref):
                        return found
                    values += found
                return values
            if name in scope.params:
                return Ref(scope, name)
            scope = scope.parent
        raise Unreadable(name)

    def _returned(self, call: ast.Call, ctx: Func | None, depth: int) -> list[str]:
        """What a call of a library function returns (its ``return`` expressions)."""
        values: list[str] = []
        callees = [f for f in self.library.callees(call, ctx) if f.node is not None]
        if not callees:
            raise Unreadable(ast.unparse(call))
        for callee in callees:
            returns = [
                n.value
                for n in ast.walk(callee.node)
                if isinstance(n, ast.Return) and n.value is not None and self.library.owner_of.get(n) is callee
            ]
            for expr in returns:
                found = self.value(expr, callee, depth + 1)
                if isinstance(found, Ref):
                    bound, passed = _argument(call, callee, found.name)
                    if bound is None:
                        raise Unreadable(ast.unparse(call))
                    found = self.value(bound, ctx if passed else callee, depth + 1)
                    if isinstance(found, Ref):
                        raise Unreadable(ast.unparse(call))
                values += found
        return values

    # -------------------------------------------------------------- several values of one call, jointly
    def joint(self, items: list[tuple[ast.expr, Func | None] | list[str]], depth: int = 0) -> set[tuple[str, ...]]:
        """Every combination the items can take at one call site; a value handed in is followed to each caller
        (so a method and a path handed in together stay together)."""
        resolved: list[list[str] | Ref] = []
        for item in items:
            if isinstance(item, list):
                resolved.append(item)
            else:
                resolved.append(self.value(item[0], item[1], depth))
        refs = [r for r in resolved if isinstance(r, Ref)]
        if not refs:
            return set(itertools.product(*resolved))  # type: ignore[arg-type]
        if depth > 8:
            raise Unreadable(f"{refs[0].owner.where} hands {refs[0].name} on too deep")
        owner = refs[0].owner
        combos: set[tuple[str, ...]] = set()
        for call, caller in self.library.call_sites(owner):
            if _embedded_only(caller, caller.module if caller else owner.module):
                continue
            bound: list[tuple[ast.expr, Func | None] | list[str]] = []
            for original, item in zip(resolved, items, strict=True):
                if isinstance(original, Ref) and original.owner is owner:
                    expr, passed = _argument(call, owner, original.name)
                    if expr is None:
                        raise Unreadable(f"{caller.where if caller else owner.module}: {ast.unparse(call)}")
                    bound.append((expr, caller if passed else owner))
                else:
                    bound.append(original if isinstance(original, list) else item)
            combos |= self.joint(bound, depth + 1)
        for args in self.robot.calls_of(owner.keyword) if owner.keyword else []:
            bound = []
            for original, item in zip(resolved, items, strict=True):
                if isinstance(original, Ref) and original.owner is owner:
                    text = _robot_argument(args, owner, original.name)
                    default = owner.defaults.get(original.name)
                    if text is None and default is None:
                        raise Unreadable(f"{owner.keyword} called with {list(args)}")
                    bound.append([robot_path(text)] if text is not None else (default, owner))  # type: ignore[list-item]
                else:
                    bound.append(original if isinstance(original, list) else item)
            combos |= self.joint(bound, depth + 1)
        return combos  # empty when nothing on the AWS path calls it: then it asks nothing


def _argument(call: ast.Call, callee: Func, name: str) -> tuple[ast.expr | None, bool]:
    """The expression ``call`` passes for ``callee``'s parameter ``name``, and whether the call passed it (else:
    the parameter's default, or ``None``)."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value, True
    index = callee.params.index(name)
    if index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: index + 1]):
        return call.args[index], True
    return callee.defaults.get(name), False


def _robot_argument(args: tuple[str, ...], keyword: Func, name: str) -> str | None:
    """The text a Robot call passes for the keyword's parameter ``name`` (``None``: it passes none)."""
    for arg in args:
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    positional = [a for a in args if not re.match(r"^[A-Za-z_]\w*=", a)]
    index = keyword.params.index(name)
    return positional[index] if index < len(positional) else None


def robot_path(text: str) -> str:
    """``/sessions/${SESSION}[sessionId]`` -> ``/sessions/{}``."""
    return re.sub(r"[$@&%]\{[^}]*\}(\[[^\]]*\])*", "{}", text)


# --- Robot side
BDD_PREFIX = re.compile(r"^(given|when|then|and|but)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Step:
    """One keyword call of a test that runs on AWS (``name`` empty: an IF condition or a VAR value)."""

    name: str
    args: tuple[str, ...]
    where: str
    params: tuple[str, ...] = ()  # a user keyword's [Arguments], when the call is to one

    def param_of(self, index: int) -> str | None:
        """The parameter argument ``index`` binds to (a named argument's own name)."""
        arg = self.args[index]
        named = re.match(r"^([A-Za-z_]\w*)=", arg)
        if named:
            return named.group(1)
        positional = [i for i, a in enumerate(self.args) if not re.match(r"^[A-Za-z_]\w*=", a)]
        at = positional.index(index)
        return self.params[at] if at < len(self.params) else None


@dataclass
class RobotCalls:
    """The keyword calls of every test that runs on AWS (not tagged ``needs-…``), followed into user keywords."""

    steps: list[Step] = field(default_factory=list)

    @classmethod
    def read(cls, suites: Path = ROOT / "suites") -> RobotCalls:
        found = cls()
        walked: set[tuple[str, int | None]] = set()  # user keywords followed already (source, line)
        resources: dict[Path, object] = {}

        def keywords_of(suite_file) -> list:
            """The suite file's own keywords, then those of the resource files it imports (recursively)."""
            keywords, queue, done = list(suite_file.keywords), [], set()
            base = Path(suite_file.source).parent if suite_file.source else ROOT
            queue += [(base / i.name).resolve() for i in suite_file.imports if i.type == "RESOURCE"]
            while queue:
                path = queue.pop()
                if path in done or not path.is_file():
                    continue
                done.add(path)
                if path not in resources:
                    resources[path] = ResourceFileBuilder(process_curdir=False).build(str(path))
                resource = resources[path]
                keywords += list(resource.keywords)
                queue += [(path.parent / i.name).resolve() for i in resource.imports if i.type == "RESOURCE"]
            return keywords

        def walk(body: Iterable, user_keywords: list, where: str, template: str | None = None) -> None:
            for step in body:
                name = getattr(step, "name", None) or template
                if type(step).__name__ == "Keyword" and name:
                    args = tuple(str(a) for a in step.args)
                    bare = BDD_PREFIX.sub("", name)
                    called = next((k for k in user_keywords if k.matches(bare) or k.matches(name)), None)
                    params = tuple(called.args.positional) if called is not None else ()
                    found.steps.append(Step(name, args, where, params))
                    if called is not None and (str(called.source), called.lineno) not in walked:
                        walked.add((str(called.source), called.lineno))
                        walk(called.body, user_keywords, f"{where} > {called.name}")
                for attr in ("condition", "value", "values"):
                    extra = getattr(step, attr, None)
                    if isinstance(extra, str) and extra:
                        found.steps.append(Step("", (extra,), where))
                    elif isinstance(extra, tuple | list) and extra:
                        found.steps.append(Step("", tuple(str(e) for e in extra), where))
                for attr in ("body", "branches"):
                    children = getattr(step, attr, None)
                    if children:
                        walk(children, user_keywords, where, template if attr == "body" else None)

        def visit(suite, inherited: list) -> None:
            user_keywords = keywords_of(suite.resource) + inherited
            source = Path(suite.source) if suite.source else None
            where = (source.relative_to(ROOT) if source.is_relative_to(ROOT) else source).as_posix() if source else ""
            walk([f for f in (suite.setup, suite.teardown) if f and f.name], user_keywords, where)
            for test in suite.tests:
                if embedded_only_reason(test.tags):
                    continue  # skipped on AWS (targets/placement.py)
                here = f"{where}: {test.name}"
                walk([f for f in (test.setup, test.teardown) if f and f.name], user_keywords, here)
                walk(test.body, user_keywords, here, test.template or None)
            for child in suite.suites:
                visit(child, inherited)

        visit(TestSuiteBuilder(process_curdir=False).build(str(suites)), [])
        return found

    def calls_of(self, keyword: str) -> list[tuple[str, ...]]:
        """The arguments of every call of the library keyword ``keyword`` (its Robot name)."""
        wanted = _normalize_keyword(keyword)
        return [s.args for s in self.steps if s.name and _normalize_keyword(BDD_PREFIX.sub("", s.name)) == wanted]


# --- what the code asks
@dataclass
class Demands:
    """What the AWS path asks of a deployment, each with where the code asks it."""

    calls: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (METHOD, template) -> where
    fields: dict[str, set[str]] = field(default_factory=dict)
    codes: dict[str, set[str]] = field(default_factory=dict)
    statuses: dict[int, set[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what the checker could not read

    def note(self, kind: dict, key, where: str) -> None:
        kind.setdefault(key, set()).add(where)


def path_template(path: str) -> str:
    """``/sessions/{id}?userId={u}`` -> ``/sessions/{}?userId=``: values are ``{}``, a query keeps its names."""
    base, _, query = path.partition("?")
    base = re.sub(r"\{[^}]*\}", "{}", base)
    base = re.sub(r"(\{\})+", "{}", base).rstrip("/") or "/"
    if query:
        names = sorted(part.partition("=")[0] for part in query.split("&") if part)
        return f"{base}?{'&'.join(f'{n}=' for n in names)}"
    return base


def _sinks(library: Library) -> Iterator[tuple[ast.Call, Func | None, str]]:
    """Calls that send a request to the session API: ``<…api>.request(method, path)`` and ``HttpRequest(…)``."""
    for node, func, module in library.nodes():
        if not isinstance(node, ast.Call):
            continue
        target = node.func
        if isinstance(target, ast.Attribute) and target.attr == "request":
            receiver = ast.unparse(target.value)
            if re.search(r"(^|\.)api$", receiver):
                yield node, func, module
        elif (isinstance(target, ast.Name) and target.id == "HttpRequest") or (
            isinstance(target, ast.Attribute) and target.attr == "HttpRequest"
        ):
            yield node, func, module


def _method_and_path(call: ast.Call) -> tuple[ast.expr | None, ast.expr | None]:
    named = {kw.arg: kw.value for kw in call.keywords}
    method = call.args[0] if call.args else named.get("method")
    path = call.args[1] if len(call.args) > 1 else named.get("path")
    return method, path


def session_fields() -> set[str]:
    """The session object's fields: ``Session`` of docs/openapi.yaml and the object in docs/platform-contract.md."""
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    names = set(spec["components"]["schemas"]["Session"]["properties"])
    text = PLATFORM_DOC.read_text(encoding="utf-8")
    block = re.search(r"Session object:\s*```json\s*(.*?)```", text, re.DOTALL)
    if block:
        names |= set(re.findall(r'"([A-Za-z]+)":', block.group(1)))
    return names


def error_codes() -> set[str]:
    """The error codes of docs/platform-contract.md: the errors column of its HTTP API table, and the examples of
    docs/openapi.yaml's ``Error``."""
    text = PLATFORM_DOC.read_text(encoding="utf-8")
    section = text.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    codes = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            codes |= set(re.findall(r"`([a-z]+(?:_[a-z]+)*)`", line.strip().strip("|").split("|")[-1]))
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    return codes | set(spec["components"]["schemas"]["Error"]["properties"]["error"].get("examples", []))


# A name that says a number is an HTTP status: response.status, _expect(response, 201), GONE_STATUSES, ...
STATUS_WORDS = re.compile(r"status|_expect|rejection|answer", re.IGNORECASE)


def _statuses(node: ast.AST) -> list[int]:
    """The HTTP statuses ``node`` asserts on: numbers a status is compared with (``==``, ``in`` ...; an ordering
    such as ``< 300`` is a class, not a status), handed to a check of one, or kept under a status's name."""
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        exact = all(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops)
        if not exact or not any(STATUS_WORDS.search(ast.unparse(o)) for o in operands):
            return []
        values: list[ast.expr] = operands
    elif isinstance(node, ast.Call):
        if not STATUS_WORDS.search(ast.unparse(node.func)):
            return []
        values = [*node.args, *(kw.value for kw in node.keywords)]
    elif isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if node.value is None or not any(STATUS_WORDS.search(ast.unparse(t)) for t in targets):
            return []
        values = [node.value]
    else:
        return []
    numbers = []
    for value in values:
        for item in value.elts if isinstance(value, ast.Tuple | ast.List | ast.Set) else [value]:
            if isinstance(item, ast.Constant) and type(item.value) is int and 100 <= item.value <= 599:
                numbers.append(item.value)
    return numbers


def demands(library: Library | None = None, robot: RobotCalls | None = None) -> Demands:
    """Everything the AWS path asks of a deployment, read from the library's code and the suites."""
    library = library or Library()
    robot = robot or RobotCalls.read()
    found = Demands()
    evaluator = Evaluator(library, robot)
    fields, codes = session_fields(), error_codes()

    # -- calls
    for call, func, module in _sinks(library):
        if _embedded_only(func, module):
            continue
        where = func.where if func else module
        if where in RESENDS:
            continue
        method, path = _method_and_path(call)
        if method is None or path is None:
            found.problems.append(f"{where}: cannot find the method and path of {ast.unparse(call)}")
            continue
        try:
            combos = evaluator.joint([(method, func), (path, func)])
        except Unreadable as error:
            found.problems.append(f"{where}: cannot tell which call {ast.unparse(call)} makes ({error})")
            continue
        for verb, target in combos:
            if verb.upper() not in HTTP_METHODS or not target.startswith("/"):
                found.problems.append(f"{where}: {ast.unparse(call)} can send {verb!r} {target!r}")
                continue
            found.note(found.calls, (verb.upper(), path_template(target)), where)

    # -- URLs on PLATFORM_API_URL built beside the client; fields, codes, statuses the code names
    for node, func, module in library.nodes():
        if _embedded_only(func, module):
            continue
        where = func.where if func else module
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value == "PLATFORM_API_URL" and not module.startswith("core/") and where not in OWN_URL:
                found.problems.append(
                    f"{where}: builds a URL on PLATFORM_API_URL beside the API client (no contract mapping, "
                    "authentication or TLS settings): call through ctx.api, or add it to OWN_URL with the reason"
                )
            if node.value in fields:
                found.note(found.fields, node.value, where)
            for code in codes:
                if re.search(rf"\b{code}\b", node.value):
                    found.note(found.codes, code, where)
        if module not in OTHER_HTTP:
            for status in _statuses(node):
                found.note(found.statuses, status, where)

    # -- the steps of the tests that run on AWS
    keyword_params = {_normalize_keyword(f.keyword): f.params for f in library.funcs if f.keyword}
    for step in robot.steps:
        params = step.params or keyword_params.get(_normalize_keyword(BDD_PREFIX.sub("", step.name)), [])
        step = Step(step.name, step.args, step.where, tuple(params))
        for index, arg in enumerate(step.args):
            for name in fields:  # as a key: ${SESSION}[name], name=value, $session["name"]
                if re.search(rf"\[{name}\]|^{name}=|[\"']{name}[\"']", arg):
                    found.note(found.fields, name, step.where)
            for code in codes:
                if re.search(rf"\b{code}\b", arg):
                    found.note(found.codes, code, step.where)
            if arg.startswith("msg="):
                continue
            if re.fullmatch(r"[1-5]\d\d(\s+[1-5]\d\d)*", arg.strip()):
                param = step.param_of(index) or ""
                if "status" in param.lower() or any("status" in other for other in step.args if other is not arg):
                    for status in map(int, arg.split()):
                        found.note(found.statuses, status, step.where)
            elif "status" in arg:  # an expression: $answer["status"] in (400, 404)
                for status in re.findall(r"(?<![\w.$])([1-5]\d\d)(?![\w.])", arg):
                    found.note(found.statuses, int(status), step.where)
    return found


# --- the doc
@dataclass
class Listing:
    """What a deployment contract lists: calls, names in backticks, numbers."""

    calls: set[tuple[str, str]]
    names: set[str]
    numbers: set[int]

    @classmethod
    def of(cls, text: str) -> Listing:
        calls = {
            (method, path_template(path))
            for method, path in re.findall(r"`(GET|POST|PUT|DELETE|PATCH|HEAD) (/[^`\s]*)`", text)
        }
        names = set(re.findall(r"`([^`\s]+)`", text))
        numbers = {int(n) for n in re.findall(r"(?<![\w.])([1-5]\d\d)(?![\w.])", text)}
        return cls(calls, names, numbers)


def missing_from(text: str, asked: Demands) -> list[str]:
    """What ``asked`` names that the contract ``text`` does not list, one line each with where the code asks it."""
    listing = Listing.of(text)

    def where(places: set[str]) -> str:
        shown = sorted(places)
        return ", ".join(shown[:3]) + (f" (+{len(shown) - 3} more)" if len(shown) > 3 else "")

    lines = [
        f"call `{method} {path}` (called by {where(places)})"
        for (method, path), places in sorted(asked.calls.items())
        if (method, path) not in listing.calls
    ]
    lines += [
        f"session field `{name}` (named by {where(places)})"
        for name, places in sorted(asked.fields.items())
        if name not in listing.names
    ]
    lines += [
        f"error code `{code}` (named by {where(places)})"
        for code, places in sorted(asked.codes.items())
        if code not in listing.names
    ]
    lines += [
        f"HTTP status {status} (asserted by {where(places)})"
        for status, places in sorted(asked.statuses.items())
        if status not in listing.numbers
    ]
    return lines


def listed_but_never_called(text: str, asked: Demands) -> list[str]:
    """Calls the contract ``text`` lists that nothing on the AWS path makes (a QA team would build them for
    nothing)."""
    return [f"`{method} {path}`" for method, path in sorted(Listing.of(text).calls - set(asked.calls))]


def optional_without_fallback(text: str) -> list[str]:
    """Rows of the contract's tables that call something optional without saying what the suite does without it
    (``**optional**: …`` says it)."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [
        row.split("|")[1].strip()
        for row in rows
        if re.search(r"\boptional\b", row.rstrip("| ").rsplit("|", 1)[-1], re.IGNORECASE)
        and not re.search(r"\*\*optional\*\*: \S", row)
    ]
