"""Reading any pickle checkpoint without running code from it.

Checkpoints written by other programs (the BioMassters winner's, whole pickled models) do
not load with torch's `weights_only=True`, and a plain `torch.load` of them would run
whatever the file names. `safe_load` reads them with an unpickler that rebuilds tensors and
plain containers, keeps every object of a model library's class as inert data (`Opaque`:
its pickled state, never constructed), and refuses any other name (`os.system`,
`builtins.eval`, ...) before anything is called.

torch's own allow-list (`torch.serialization.safe_globals`) cannot stand in for it: it
constructs the classes it allows, and a whole saved model names dozens of timm and smp
classes that would have to be importable, in the versions that wrote the file.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import pickle
import re
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agbm.errors import CheckpointError, UnsafePickleError, reason

#: Callables the file may have called: they only rebuild tensors, containers and numbers.
_REAL: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("_codecs", "encode"): codecs.encode,  # bytes in protocol-2 pickles (NumPy arrays)
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
}


_MULTIARRAY = getattr(np, "_core", None) or np.core  # NumPy 2 moved numpy.core to numpy._core


for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _REAL[_module, "scalar"] = _MULTIARRAY.multiarray.scalar
    _REAL[_module, "_reconstruct"] = _MULTIARRAY.multiarray._reconstruct


#: Packages whose classes a saved model is made of: their objects are kept as `Opaque` data.
_MODEL_PACKAGES = frozenset(
    {
        "models",  # the winner's own module
        "__main__",
        "timm",
        "segmentation_models_pytorch",
        "torch",
        "torchvision",
        "argparse",
        "functools",
        "copyreg",
        "numpy",
    }
)


class Opaque:
    """An object of a class the file names, kept as data: the class is never imported and
    nothing of it runs. `args` holds what the pickle would have constructed it with, `state`
    what it would have restored (for a torch module: its `__dict__`)."""

    origin = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Opaque:
        obj = object.__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: `__new__` kept the arguments."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.origin} (not loaded)>"


def _find_class(module: str, name: str) -> Any:
    """What a global named in the file becomes: a rebuilder, an `Opaque` class, or a refusal."""
    if (module, name) in _REAL:
        return _REAL[module, name]
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if module.split(".")[0] in _MODEL_PACKAGES:
        return _opaque_class(module, name)
    raise UnsafePickleError(
        f"it names {module}.{name}, which no checkpoint needs; refused without running "
        "anything from it"
    )


_OPAQUE: dict[tuple[str, str], type[Opaque]] = {}


def _opaque_class(module: str, name: str) -> type[Opaque]:
    key = (module, name)
    if key not in _OPAQUE:
        _OPAQUE[key] = type(re.sub(r"\W", "_", name), (Opaque,), {"origin": f"{module}.{name}"})
    return _OPAQUE[key]


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names, as pickle's own find_class maps them (`__builtin__.set`, ...).
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        return _find_class(_compat_pickle.IMPORT_MAPPING.get(module, module), name)


def _load(file: Any, **kwargs: Any) -> Any:
    return _Unpickler(file, **kwargs).load()


#: The `pickle_module` torch.load reads with (it needs `Unpickler` and, for the pre-zip
#: format, `load`).
_SAFE_PICKLE = types.ModuleType("agbm_safe_pickle")


_SAFE_PICKLE.Unpickler = _Unpickler  # type: ignore[attr-defined]


_SAFE_PICKLE.load = _load  # type: ignore[attr-defined]


_SAFE_PICKLE.__dict__.update(
    {k: getattr(pickle, k) for k in ("UnpicklingError", "HIGHEST_PROTOCOL")}
)


def safe_load(path: Path) -> Any:
    """`torch.load` of any pickle checkpoint without running code from it (see the module's
    docstring): an `UnsafePickleError` naming the file and the global for a refused name, a
    `CheckpointError` naming it for anything unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_SAFE_PICKLE)
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}") from None
    except Exception as err:  # truncated zip, not a pickle, ...: many types
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({reason(err)})") from None
