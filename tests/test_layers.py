"""The house's floors, read from the code's own imports: tagsmith -> pipelines -> assets_defs -> resources -> ml.

Every `import` / `from ... import` in every .py file of the five packages counts, at any depth (an import inside
a function ties two modules as surely as one at the top: it only runs later). A module may import its own floor
or a lower one, never a higher one, and no set of modules may import each other round in a circle. (Which
third-party libraries a floor may use, e.g. Dagster nowhere in `ml/`, is tests/test_definitions.py's check.)
"""

import ast
from pathlib import Path

FLOORS = ("ml", "resources", "assets_defs", "pipelines", "tagsmith")  # lowest first
ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path) -> dict[str, Path]:
    """{dotted module name: file} of every .py file under the floors' folders."""
    return {
        module_name(path, root): path
        for floor in FLOORS
        if (root / floor).is_dir()
        for path in sorted((root / floor).rglob("*.py"))
    }


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The house's modules that module `name` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from pkg import sub` imports the module pkg.sub when there is one, else names of pkg
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a module: the module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    files = modules(root)
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def floor_of(name: str) -> int:
    return FLOORS.index(name.split(".")[0])


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} ({FLOORS[floor_of(source)]}) imports {target} ({FLOORS[floor_of(target)]})"
        for source, targets in graph.items()
        for target in targets
        if floor_of(target) > floor_of(source)
    )


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def test_every_floor_imports_only_its_own_or_lower_floors():
    graph = import_graph(ROOT)
    assert {name.split(".")[0] for name in graph} == set(FLOORS)  # the walk found every floor
    assert sum(len(targets) for targets in graph.values()) > 100  # and read their imports
    assert upward_imports(graph) == []


def third_party_imports(path: Path) -> set[str]:
    """The top-level names of every absolute import in the file, at any depth (`import boto3.s3` -> boto3)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_ml_does_no_s3_io():
    """S3 reads live in resources/media_store.py: ml code reads through the `MediaReader` it is given."""
    files = sorted((ROOT / "ml").rglob("*.py"))
    assert files  # the walk found ml
    offenders = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in third_party_imports(path) & {"boto3", "botocore", "s3fs", "aiobotocore"}
    )
    assert offenders == []


def test_no_modules_import_each_other_in_a_circle():
    assert import_cycles(import_graph(ROOT)) == []


def _house(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_an_upward_import_is_caught_even_inside_a_function(tmp_path):
    root = _house(
        tmp_path,
        {
            "ml/__init__.py": "",
            "ml/media.py": "def read():\n    from resources.media_store import MediaStore\n",
            "resources/__init__.py": "",
            "resources/media_store.py": "from ml import media\n\nMediaStore = object\n",
            "tagsmith/__init__.py": "",
            "tagsmith/cli.py": "import resources.media_store\nfrom ml.media import read\n",
        },
    )
    graph = import_graph(root)
    assert graph["tagsmith.cli"] == {"resources.media_store", "ml.media"}  # downward: allowed
    assert upward_imports(graph) == ["ml.media (ml) imports resources.media_store (resources)"]
    assert import_cycles(graph) == [["ml.media", "resources.media_store"]]


def test_a_cycle_through_a_package_and_relative_imports_is_caught(tmp_path):
    root = _house(
        tmp_path,
        {
            "ml/__init__.py": "",
            "ml/backbones/__init__.py": "from . import efficientnet\nfrom ml import views\n",
            "ml/backbones/efficientnet.py": "from .registry import Backbone\n",
            "ml/backbones/registry.py": "Backbone = object\n",
            "ml/views.py": "from ml.backbones import Backbone\n",
        },
    )
    graph = import_graph(root)
    assert graph["ml.backbones.efficientnet"] == {"ml.backbones.registry"}
    assert import_cycles(graph) == [["ml.backbones", "ml.views"]]
    (root / "ml/views.py").write_text("from ml.backbones.registry import Backbone\n")  # the fix: no circle
    assert import_cycles(import_graph(root)) == []


def test_an_s3_import_is_caught_even_inside_a_function(tmp_path):
    root = _house(
        tmp_path,
        {
            "ml/media.py": "def read():\n    import boto3.session\n",
            "ml/video.py": "from botocore.exceptions import ClientError\nfrom .media import read\n",
        },
    )
    assert third_party_imports(root / "ml/media.py") == {"boto3"}
    assert third_party_imports(root / "ml/video.py") == {"botocore"}  # a relative import is the house's own
