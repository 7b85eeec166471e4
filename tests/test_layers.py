"""The package's floors: imports run one way only, with no circle, and inference stays light.

The layer rule (README, "Architecture") is an import-linter "layers" contract in
pyproject.toml: errors < io, metrics, safe_pickle < data < models, compose < runtime, labels
< training, inference < evaluation, viz < demo, mapping < cli; a module may import from its
own folder or a lower floor, never upward, nor sideways between two folders of one floor.
import-linter reads every static import, those inside functions too. What a static graph
cannot see, or a layers contract cannot say, is checked here: imports through importlib,
relative imports, circles inside one folder, argparse outside the CLI, exception classes
outside errors.py, and what importing a layer loads: the ground floor, the compose and
labels code and a compose task load no torch (every command's --help: tests/cli).
"""

from __future__ import annotations

import ast
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

import agbm
from tests.helpers import REPO

PACKAGE = Path(agbm.__file__).parent
#: Functions that import the module named by their first argument.
DYNAMIC_IMPORTS = ("import_module", "__import__")


def test_the_layer_contract_is_kept() -> None:
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True) == 0


def lint_copy(copy: Path) -> subprocess.CompletedProcess:
    """import-linter's verdict on a copy of the package (with a violation planted in it)."""
    code = (
        "import sys\nfrom importlinter.cli import lint_imports\n"
        f"sys.exit(lint_imports(config_filename={str(REPO / 'pyproject.toml')!r}, no_cache=True))"
    )
    env = {**os.environ, "PYTHONPATH": str(copy.parent)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=copy.parent, env=env, capture_output=True, text=True
    )


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package under `root`, by dotted name."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _imported(node: ast.AST, names: set[str]) -> list[str]:
    """The modules one node imports: an import statement, or `importlib.import_module` /
    `__import__` called with a constant name. `from agbm.data import cache` imports the
    module agbm.data.cache; `from agbm.data import ChipDataset` the package agbm.data."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [
            f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in names else node.module
            for a in node.names
        ]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        called = node.func.attr if isinstance(node.func, ast.Attribute) else node.func
        name = called if isinstance(called, str) else getattr(called, "id", "")
        if name in DYNAMIC_IMPORTS and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def imports(path: Path, names: set[str]) -> Iterator[tuple[int, str]]:
    """(line, module) of every agbm module `path` imports, anywhere in the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        found = _imported(node, names)
        yield from ((node.lineno, m) for m in found if m == "agbm" or m.startswith("agbm."))


def relative_imports(root: Path) -> list[str]:
    """Relative imports (`from ..training import x`): agbm imports absolutely, so that every
    import is one the layer check can see."""
    return [
        f"{path.relative_to(root.parent)}:{node.lineno}"
        for path in modules(root).values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]


def import_cycles(root: Path) -> list[list[str]]:
    """Every circle of module imports (each found once, from its smallest name)."""
    found = modules(root)
    graph = {n: {t for _, t in imports(p, set(found)) if t in found} for n, p in found.items()}
    cycles = []

    def walk(start: str, node: str, trail: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                cycles.append([*trail, start])
            elif nxt > start and nxt not in trail:
                walk(start, nxt, [*trail, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return cycles


def test_every_folder_is_on_a_floor_of_the_contract() -> None:
    text = (REPO / "pyproject.toml").read_text()
    tops = {name.split(".")[1] for name in modules(PACKAGE) if "." in name}
    assert [t for t in sorted(tops) if f'"agbm.{t}' not in text and f"| agbm.{t}" not in text] == []


def dynamic_imports(root: Path) -> list[str]:
    """`importlib.import_module("agbm...")` with a constant name: an import import-linter
    cannot see (the CLI's own, of `agbm.cli.{name}`, is built from a name, not a constant)."""
    found = modules(root)
    return [
        f"{path.relative_to(root.parent)}:{node.lineno} {name}"
        for path in found.values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and not isinstance(node, ast.ImportFrom)
        for name in _imported(node, set(found))
    ]


def test_no_import_hides_from_the_contract() -> None:
    assert dynamic_imports(PACKAGE) == []


def test_there_is_no_import_cycle() -> None:
    assert import_cycles(PACKAGE) == []


def test_every_import_is_absolute() -> None:
    assert relative_imports(PACKAGE) == []


def test_only_the_command_line_uses_argparse() -> None:
    """The library takes arguments, not parsed command lines."""
    users = [
        name
        for name, path in modules(PACKAGE).items()
        if not name.startswith(("agbm.cli", "agbm.__main__"))
        for node in ast.walk(ast.parse(path.read_text()))
        if "argparse" in _imported(node, set())
    ]
    assert users == []


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(PACKAGE, tmp_path / "agbm"))


def test_a_planted_upward_or_sideways_import_is_caught(copy: Path) -> None:
    assert lint_copy(copy).returncode == 0
    with (copy / "data" / "bands.py").open("a") as f:
        f.write("\n\ndef late():\n    from agbm.training.trainer import train\n")
    with (copy / "inference" / "tta.py").open("a") as f:
        f.write("\nfrom agbm.training import config\n")
    done = lint_copy(copy)
    assert done.returncode == 1 and "BROKEN" in done.stdout
    assert "agbm.data.bands -> agbm.training.trainer" in done.stdout
    assert "agbm.inference.tta -> agbm.training.config" in done.stdout


def test_planted_relative_and_dynamic_imports_are_caught(copy: Path) -> None:
    with (copy / "data" / "bands.py").open("a") as f:
        f.write("\nfrom ..training import trainer\n")
        f.write("\n\ndef late():\n    importlib.import_module('agbm.viz.plots')\n")
    assert relative_imports(copy) and relative_imports(copy)[0].startswith("agbm/data/bands.py")
    assert [d.split()[-1] for d in dynamic_imports(copy)] == ["agbm.viz.plots"]


def test_a_planted_cycle_is_caught(copy: Path) -> None:
    with (copy / "data" / "layout.py").open("a") as f:
        f.write("\nfrom agbm.data import dataset\n")  # dataset -> sources -> raw -> layout
    cycles = import_cycles(copy)
    assert cycles and all("agbm.data.layout" in c and "agbm.data.dataset" in c for c in cycles)


def public_constants(root: Path) -> dict[tuple[str, str], list[str]]:
    """Each public module-level constant with a literal value, (name, its value's repr), and
    the modules that assign it."""
    found: dict[tuple[str, str], list[str]] = {}
    for name, path in modules(root).items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id.isupper() and target.id[0] != "_":
                try:
                    key = (target.id, repr(ast.literal_eval(value)))
                except ValueError:  # not a literal: computed, or built from others
                    continue
                found.setdefault(key, []).append(name)
    return found


def test_no_constant_is_defined_twice() -> None:
    """A fact (`PIXEL_M = 10.0`) is defined in one module and imported by the others, so
    that two copies cannot drift apart."""
    twice = {k: v for k, v in public_constants(PACKAGE).items() if len(v) > 1}
    assert twice == {}


def test_every_exception_class_is_defined_in_errors() -> None:
    """One place for every deliberate exception, all under `AgbmError` (and its one
    warning, `AgbmWarning`)."""
    from agbm.errors import AgbmError, AgbmWarning

    elsewhere = [
        f"{name}.{node.name}"
        for name, path in modules(PACKAGE).items()
        if name != "agbm.errors"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(b).endswith(("Error", "Exception")) for b in node.bases)
    ]
    assert elsewhere == []
    import agbm.errors

    errors = [v for v in vars(agbm.errors).values() if isinstance(v, type)]
    errors = [e for e in errors if issubclass(e, Exception) and e is not AgbmWarning]
    assert all(issubclass(e, AgbmError) for e in errors)


#: Modules a light command imports: none may bring training code or matplotlib with it.
LIGHT = [
    "agbm.inference",
    "agbm.models.winner.convert",
    "agbm.data",
    "agbm.labels.collect",
    "agbm.labels.chips",
    "agbm.labels.footprints",
]


#: What the ground floor and every command's start load none of: the model's libraries.
MODEL_LIBRARIES = ("torch", "timm", "segmentation_models_pytorch")


def loaded_by(code: str, prefixes: tuple[str, ...], stdin: bytes = b"") -> list[str]:
    """The modules named by `prefixes` that running `code` in a fresh interpreter loads
    (given `stdin`); a failing run fails the test."""
    report = f"; print(','.join(m for m in sys.modules if m.startswith({prefixes!r})))"
    done = subprocess.run(
        [sys.executable, "-c", "import sys; " + code + report],
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return [m for m in done.stdout.decode().splitlines()[-1].split(",") if m]


@pytest.mark.parametrize("module", LIGHT)
def test_inference_loads_no_training_code_and_no_matplotlib(module: str) -> None:
    loaded = loaded_by(f"import {module}", ("agbm.training", "agbm.viz", "matplotlib"))
    assert loaded == [], f"{module} loads {loaded}"


def test_training_loads_matplotlib_only_to_draw() -> None:
    """Importing the training code leaves matplotlib (and the caller's backend) alone."""
    assert loaded_by("import agbm.training.trainer", ("matplotlib",)) == []


@pytest.mark.parametrize(
    "module",
    [
        "agbm.io",
        "agbm.data",
        "agbm.data.raw",  # a chip's files, read by agbm chips and the labels wing
        "agbm.data.cache",
        "agbm.data.sources",
        "agbm.labels.chips",
        "agbm.labels.frame",
        "agbm.labels.collect",
        "agbm.labels.plots",
        "agbm.compose",  # what `agbm compose` runs
        "agbm.compose.catalog",
        "agbm.region.tiles",
        "agbm.region.engine",
        "agbm.region.tasks",  # the compose task's module
        "agbm.region.cluster",  # every local worker's preload
        "agbm.region.chips",  # agbm chips
        "agbm.inference.tiling",
        "agbm.training.config",
        "agbm.cli.options",
        "agbm.evaluation.totals",  # agbm stats
        "agbm.evaluation.change",  # agbm change, stats --change
        "agbm.evaluation.estimate",  # agbm estimate
    ],
)
def test_the_ground_floor_loads_no_torch(module: str) -> None:
    """A command that composes or reads labels, and a Dask worker that composes, start in
    a fraction of a second and a fraction of the memory: no model code comes with them."""
    loaded = loaded_by(f"import {module}", MODEL_LIBRARIES)
    assert loaded == [], f"{module} loads {loaded}"


def test_a_region_s_compose_task_loads_no_torch() -> None:
    """What a Dask worker does with a compose task: unpickle it, importing its module."""
    from agbm.region import tasks

    task = pickle.dumps(tasks.compose_task)
    loaded = loaded_by(
        "import pickle; pickle.loads(sys.stdin.buffer.read())", MODEL_LIBRARIES, task
    )
    assert loaded == []


def test_the_torch_free_names_name_the_torch_code() -> None:
    """`agbm.choices` spells, without torch, the keys of the code that needs it."""
    from agbm import choices
    from agbm.inference.tta import TTA
    from agbm.models.temporal import TEMPORAL_BLOCKS
    from agbm.runtime import AMP_DTYPES

    assert choices.TTA_NAMES == tuple(TTA)
    assert choices.AMP_NAMES == tuple(AMP_DTYPES)
    assert choices.TEMPORAL_KINDS == tuple(TEMPORAL_BLOCKS)
