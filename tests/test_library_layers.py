"""The keyword library's layering (docs/architecture.md): no import circle, composition instead of reaching around.

These are the rules that keep one obvious home per concern; each failure names the file and line that breaks one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from PlatformLibrary.core.base import TargetError, keyword_title

LIBRARY = Path(__file__).resolve().parents[1] / "libraries" / "PlatformLibrary"
PACKAGE = "PlatformLibrary"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in LIBRARY.rglob("*.py"):
        parts = list(path.relative_to(LIBRARY).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([PACKAGE, *parts])] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> library modules it imports (``TYPE_CHECKING`` imports included: they are dependencies too)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                subs = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
                for imported in subs or ([target] if target in modules else []):
                    if imported != name:
                        graph[name].add(imported)
            elif isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names if alias.name in modules and alias.name != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _lines(pattern: str) -> list[str]:
    regex = re.compile(pattern)
    hits = []
    for path in sorted(LIBRARY.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if regex.search(line):
                hits.append(f"{path.relative_to(LIBRARY)}:{number}: {line.strip()}")
    return hits


def test_the_library_has_no_import_circle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_facade_imports_the_library_class():
    importers = sorted(name for name, imports in import_graph().items() if f"{PACKAGE}.library" in imports)
    assert importers == [PACKAGE]


def test_components_do_not_reach_around_their_constructor():
    """No sibling lookup through the keyword table, no library handle, no attributes set on the library."""
    assert _lines(r"__self__|self\.library\b|library\.[a-z_]+_keywords\s*=") == []


def test_components_use_no_private_member_of_another_component():
    siblings = r"api|containers|records|embedded|injector|clock|machine|_metrics|_access|_injector|_machine"
    assert _lines(rf"self\.({siblings})\._[a-z]") == []


def test_one_fault_proxy_client():
    """Every call to the fault proxy's HTTP API goes through toxiproxy.ToxiproxyClient."""
    outside = [hit for hit in _lines(r"/proxies|/toxics|/reset\b") if not hit.startswith("faults/toxiproxy.py")]
    assert [hit for hit in outside if '"""' not in hit and "``" not in hit and "#" not in hit] == []


def _library_on(target: str):
    from PlatformLibrary import PlatformLibrary
    from PlatformLibrary.core.endpoints import Endpoints
    from PlatformLibrary.core.profile import Profile

    library = PlatformLibrary(run_id="unit")
    library.profile = Profile(variables={"TARGET": target, "PROFILE": "aws" if target == "aws" else "local"})
    library.endpoints = Endpoints(library.profile)
    return library


@pytest.mark.parametrize(
    ("target", "tag", "message"),
    [
        ("aws", "embedded-only", "works on the embedded platform only"),
        ("embedded", "aws-only", "works on the AWS target only"),
    ],
)
def test_target_gating_refuses_every_keyword_of_the_other_target(target, tag, message):
    """Gating happens where keywords run (the facade's run_keyword), before any argument is looked at."""
    library = _library_on(target)
    gated = [name for name in library.get_keyword_names() if tag in library.get_keyword_tags(name)]
    assert len(gated) >= 10
    for name in gated:
        with pytest.raises(TargetError, match=f"'{keyword_title(name)}' {message}"):
            library.run_keyword(name, ())


def test_target_gating_lets_a_keyword_of_both_targets_through():
    library = _library_on("aws")
    assert library.run_keyword("get_platform_endpoints", ()) == {}


def test_keyword_titles_write_acronyms_as_the_docs_do():
    assert keyword_title("create_fis_experiment_template") == "Create FIS Experiment Template"
    assert keyword_title("get_alb_target_health") == "Get ALB Target Health"


def test_the_target_seam_does_not_reach_into_aws():
    """targets/base.py, what every target implements, knows no AWS module (its value types sit in core)."""
    assert [n for n in import_graph()[f"{PACKAGE}.targets.base"] if ".aws." in n] == []


def test_libdoc_names_keywords_with_acronyms_as_the_docs_write_them():
    library = _library_on("embedded")
    names = library.get_keyword_names()
    assert {"Create FIS Experiment Template", "Get AWS Caller Identity", "Stress Session Container CPU"} <= set(names)
    assert not [n for n in names if n.lower() in {"create_fis_experiment_template", "get_aws_caller_identity"}]
    assert len(names) == len(set(n.lower().replace("_", " ") for n in names))  # every keyword once
    assert library.get_keyword_tags("Create FIS Experiment Template") == library.get_keyword_tags(
        "create_fis_experiment_template"
    )


# Modules that may read PLATFORM_API_URL themselves, with the reason; every other call to the platform's API goes
# through the one client (LibraryContext.api: auth, SigV4, TLS, the deployment's contract mapping).
API_URL_READERS = {
    "core/": "the client itself and the context that builds it",
    "load/keywords.py": "the load engine's base URL; its requests are translated by the contract (_in_contract)",
    "faults/proxy.py": "compares the URL with a Toxiproxy hop; sends nothing",
    "targets/embedded/keywords.py": "starts the embedded platform and polls its health before any test runs",
}


def test_only_the_api_client_reads_the_api_url():
    readers = {line.split(":", 1)[0] for line in _lines(r"PLATFORM_API_URL['\"]")}
    assert "load/keywords.py" in readers  # the pattern finds a reader
    assert sorted(r for r in readers if not any(r.startswith(k) for k in API_URL_READERS)) == []


HTTP_OWNERS = {
    "core/http_client.py": "the session API client: every call to the platform's API (auth, SigV4, TLS, contract)",
    "faults/proxy.py": "the session it hands the one fault-proxy client (faults/toxiproxy.py)",
    "faults/clock.py": "one session container's own /health on its port (the time it believes), not the API",
    "faults/apitier/embedded.py": "the embedded load balancer's admin port (its target list), not the API",
    "targets/embedded/keywords.py": "the embedded platform's health while it starts, before any client exists",
}


def test_http_is_sent_only_by_the_modules_that_own_a_client():
    """A new ``requests.get(...)`` to the platform would skip the one connection (auth, SigV4, TLS, contract mapping):
    HTTP calls stay in the modules listed, each with what it talks to."""
    calls = _lines(r"\brequests\.(get|post|put|patch|delete|head|request|Session)\(")
    senders = {line.split(":", 1)[0] for line in calls}
    assert "core/http_client.py" in senders  # the pattern finds a sender
    assert sorted(senders - set(HTTP_OWNERS)) == []


def test_no_keyword_checks_its_target_itself():
    assert _lines(r"require_(aws|embedded)\(|_require_") == []


# Where a target's name may decide what happens outside targets/ and core/, each with its reason. Everything else asks
# a fact (``Endpoints.local_platform_dir``, ``Endpoints.local_aws``, ``Profile.contract``) or
# goes through a backend; a third target means a backend per family, not a visit to every module.
TARGET_NAME_READERS = {
    "faults/apitier/__init__.py": "create_api_tier: the one place the API-tier backend is chosen",
    "faults/serviceroute/__init__.py": "create_service_route: the one place a service-route backend is chosen",
    "faults/ecsroute/__init__.py": "create_ecs_route: the one place the ECS-route backend is chosen",
    "faults/clientroute/__init__.py": "create_client_route: the one place the clients'-route backend is chosen",
    "faults/sessiontask/__init__.py": "create_session_task_faults: the one place the session-task backend is chosen",
    "aws/safety.py": "the chaos guard's safe defaults: chaos allowed on the embedded platform, refused elsewhere",
}


def test_only_targets_and_core_ask_which_target_runs():
    """``is_embedded`` lives under targets/ and core/; a target's name is compared only where a backend is chosen."""
    outside = [line for line in _lines(r"is_embedded") if not line.startswith(("targets/", "core/"))]
    assert outside == []
    names = {line.split(":", 1)[0] for line in _lines(r"\(\"embedded\", \"local\"\)|== \"(aws|embedded)\"")}
    assert "faults/sessiontask/__init__.py" in names  # the pattern finds a factory
    assert sorted(n for n in names if not n.startswith(("targets/", "core/")) and n not in TARGET_NAME_READERS) == []


# Packages bottom up (docs/architecture.md). An import from a lower package into a higher one runs back up.
LAYERS = {"core": 0, "aws": 1, "sessions": 1, "targets": 2, "faults": 3, "load": 3, "report": 3, "library": 4}
# Each import that runs back up, with its reason (at most two are allowed).
UPWARD_ALLOWED = {
    ("sessions.consistency", "targets.containers"): "records and containers must agree: the check needs both",
}


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "library"


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted(
        (a.removeprefix(f"{PACKAGE}."), b.removeprefix(f"{PACKAGE}."))
        for a, imports in graph.items()
        for b in imports
        if LAYERS.get(_package_of(b), 9) > LAYERS.get(_package_of(a), 9)
    )


def test_imports_run_down_the_layers():
    graph = import_graph()
    assert {_package_of(name) for name in graph} - {"__main__"} <= set(LAYERS) | {"__init__"}
    assert upward_imports(graph) == sorted(UPWARD_ALLOWED)
    assert len(UPWARD_ALLOWED) <= 2


def package_cycles(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of packages that import each other (in either direction, through any of their modules)."""
    edges = {(_package_of(a), _package_of(b)) for a, imports in graph.items() for b in imports}
    return sorted((a, b) for a, b in edges if a < b and (b, a) in edges)


def test_no_two_packages_import_each_other():
    """Statistics both load and report need live below both (core.stats); report never imports load."""
    allowed = {tuple(sorted((_package_of(f"x.{a}"), _package_of(f"x.{b}")))) for a, b in UPWARD_ALLOWED}
    assert [pair for pair in package_cycles(import_graph()) if pair not in allowed] == []


def test_the_cycle_check_sees_two_packages_importing_each_other():
    graph = {f"{PACKAGE}.load.results": {f"{PACKAGE}.report.metrics"}, f"{PACKAGE}.report.build": {f"{PACKAGE}.load.x"}}
    assert package_cycles(graph) == [("load", "report")]


def test_the_layer_check_sees_an_import_running_up():
    graph = {f"{PACKAGE}.core.base": {f"{PACKAGE}.faults.injector"}, f"{PACKAGE}.faults.injector": set()}
    assert upward_imports(graph) == [("core.base", "faults.injector")]


def test_every_module_the_docs_and_scripts_run_exists():
    """``python -m X`` in run.sh, .ci/run, README.md and docs/ names a module that can run (moves break these)."""
    import importlib.util

    root = LIBRARY.parents[1]
    texts = [root / "run.sh", root / ".ci" / "run", root / "README.md", *sorted((root / "docs").glob("*.md"))]
    named = {m for path in texts for m in re.findall(r"python -m ([A-Za-z_][\w.]*)", path.read_text(encoding="utf-8"))}
    assert "resilience_report" in named
    missing = []
    for module in sorted(named):
        spec = importlib.util.find_spec(module)
        if spec is None or (spec.submodule_search_locations and importlib.util.find_spec(f"{module}.__main__") is None):
            missing.append(module)
    assert missing == []


def _choice_checked_str_arguments(tree: ast.AST) -> list[str]:
    """Keyword arguments typed ``str`` whose value the keyword checks against a fixed set (``x not in (...)``)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
        if not any(isinstance(d, ast.Name) and d.id == "keyword" for d in decorators):
            continue
        strings = {a.arg for a in node.args.args if a.annotation is not None and ast.unparse(a.annotation) == "str"}
        for compare in (n for n in ast.walk(node) if isinstance(n, ast.Compare)):
            left = compare.left
            name = left.id if isinstance(left, ast.Name) else None
            fixed = [
                c
                for c in compare.comparators
                if (isinstance(c, ast.Tuple | ast.List | ast.Set) and all(isinstance(e, ast.Constant) for e in c.elts))
                or (isinstance(c, ast.Name) and c.id.isupper())  # a module constant such as FAULTS
                or (isinstance(c, ast.Attribute) and c.attr.isupper())  # or another module's
            ]
            if name in strings and fixed and any(isinstance(op, ast.In | ast.NotIn) for op in compare.ops):
                found.append(f"{node.name}({name})")
    return found


def test_every_choice_argument_is_a_literal_libdoc_lists():
    """A keyword argument with a fixed set of values is typed ``Literal[...]`` (libdoc lists the values, Robot converts
    them), not a ``str`` checked by hand."""
    hits = []
    for path in sorted(LIBRARY.rglob("*.py")):
        for hit in _choice_checked_str_arguments(ast.parse(path.read_text(encoding="utf-8"))):
            hits.append(f"{path.relative_to(LIBRARY)}: {hit}")
    assert hits == []


def test_the_choice_check_sees_a_str_checked_by_hand():
    source = (
        "from robot.api.deco import keyword\n@keyword\ndef k(mode: str, name: str):\n"
        "    if mode not in ('a', 'b') or name in seen:\n        raise ValueError\n"
    )
    assert _choice_checked_str_arguments(ast.parse(source)) == ["k(mode)"]


def figures(library: Path = LIBRARY) -> str:
    """The import graph's figures the closing notes quote: ``python tests/test_library_layers.py [LIBRARY_DIR]``."""
    global LIBRARY
    kept, LIBRARY = LIBRARY, library
    try:
        graph = import_graph()
        lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in library.rglob("*.py"))
        imports = sum(len(v) for v in graph.values())
        return (
            f"modules {len(graph)}, lines {lines}, imports {imports}, imports running back up a layer "
            f"{len(upward_imports(graph))}, import circles {len(cycles(graph))}, packages importing each other "
            f"{package_cycles(graph)}"
        )
    finally:
        LIBRARY = kept


if __name__ == "__main__":
    import sys

    print(figures(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else LIBRARY))


def test_the_library_never_imports_the_report_tool():
    """The resilience report is a tool beside the library (``libraries/resilience_report``): it reads what the
    keywords recorded; no keyword module imports it back."""
    offenders = []
    for path in sorted(LIBRARY.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if any(name.split(".")[0] == "resilience_report" for name in names):
                offenders.append(f"{path.relative_to(LIBRARY)}:{node.lineno}")
    assert offenders == []
