"""Reading and writing pose-evaluation feature pickles, safely.

pose-evaluation's ``extract.py`` saves a pandas DataFrame with ``DataFrame.to_pickle``; its ``cmp*.py``
scripts load two of them with ``pandas.read_pickle``. The table has one row per frame:

* ``file_name``: the entry name in the input folder (``x.mp4`` for ground truth, ``x.mp4.png`` for a
  generated folder), a str;
* ``frame_number``: 0-based int;
* ``value``: a numeric numpy array (face landmarks (68, 2), body joints (18, 2) with -1 for a missing
  joint, an embedding (128,) or (1, 2048)), or None when nothing was detected.

Unpickling can run arbitrary code, so :func:`read_features` uses a restricted unpickler by default: it
resolves only the handful of numpy/pandas (and, for pandas >= 3 string columns, pyarrow) constructors a
table of this shape needs, as written by pandas 0.23 to 3.x under numpy 1.x or 2.x, and refuses
everything else before anything is imported or called. ``trust=True`` (the CLI's ``--trust-pickle``)
falls back to ``pandas.read_pickle``.

:func:`write_features` writes a pickle that builds the table through ``pandas.DataFrame(dict)`` from
plain lists, with every array rebuilt by ``numpy.array(numpy.ndarray(shape, dtype, bytes))``. It
therefore references only ``pandas.DataFrame``, ``numpy.array`` and ``numpy.ndarray``, which every
pandas/numpy release has, so pose-evaluation's own scripts read it under their pinned pandas 0.23.4 /
numpy 1.15 as well as under current releases (a plain pandas >= 3 ``to_pickle`` would need pyarrow and
pandas >= 3 to be read back).
"""
from __future__ import annotations

import bz2
import gzip
import importlib
import io
import lzma
import math
import numbers
import os
import pickle
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from animbench.errors import UserError

COLUMNS = ("file_name", "frame_number", "value")

#: pickle protocol of :func:`write_features`; 4 is read by every Python 3 that pose-evaluation ran on.
PICKLE_PROTOCOL = 4

# --- restricted unpickler ---------------------------------------------------------------------------

# Old module paths -> current ones (numpy 2 renamed numpy.core to numpy._core and warns on the old
# path; pandas moved a few unpickling helpers). Only the module part is rewritten unless a name is given.
_MODULE_RENAMES = {
    "numpy.core.multiarray": "numpy._core.multiarray",
    "numpy.core.numeric": "numpy._core.numeric",
}
_NAME_RENAMES = {
    # pandas <= 1.3 pickled blocks through new_block (pandas' own pickle_compat maps it the same way)
    ("pandas.core.internals.blocks", "new_block"): ("pandas._libs.internals", "_unpickle_block"),
    # pandas < 2 integer/float indexes (e.g. after filtering or concatenating tables)
    ("pandas.core.indexes.numeric", "Int64Index"): ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.numeric", "UInt64Index"): ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.numeric", "Float64Index"): ("pandas.core.indexes.base", "Index"),
}

# Modules a feature table's pickle may name. Nothing outside this set is ever imported.
_ALLOWED_MODULES = frozenset({
    "builtins", "functools", "_codecs",
    "numpy", "numpy._core.multiarray", "numpy._core.numeric",
    "pandas", "pandas.core.frame", "pandas.core.series", "pandas.core.internals",
    "pandas.core.internals.managers", "pandas._libs.internals", "pandas.core.indexes.base",
    "pandas.core.indexes.range", "pandas.arrays", "pandas.core.arrays.string_",
    "pandas.core.arrays.string_arrow", "pandas._libs.arrays", "pandas.core.dtypes.dtypes",
    "pyarrow.lib",
})

# (module, name) pairs whose object is allowed; checked by identity after import, so re-exports of the
# same object under another allowed module (pandas.DataFrame vs pandas.core.frame.DataFrame) work.
_ALLOWED_OBJECTS = (
    ("builtins", "slice"), ("builtins", "bytearray"), ("builtins", "complex"),
    ("functools", "partial"),  # pandas 1.3 wraps new_block in a partial
    ("_codecs", "encode"),  # bytes in protocol-2 pickles
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy", "array"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("pandas", "DataFrame"), ("pandas", "Series"), ("pandas", "Index"), ("pandas", "RangeIndex"),
    ("pandas", "StringDtype"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas._libs.internals", "BlockPlacement"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.arrays", "StringArray"), ("pandas.arrays", "ArrowStringArray"),
    ("pandas.core.arrays.string_arrow", "ArrowStringArrayNumpySemantics"),
    ("pandas.core.arrays.string_", "StringArrayNumpySemantics"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pyarrow.lib", "_restore_array"), ("pyarrow.lib", "type_for_alias"), ("pyarrow.lib", "py_buffer"),
)
_allowed_ids: dict[int, object] | None = None


def _allowed_object_ids() -> dict[int, object]:
    """id -> object of every allowed constructor that this installation has (built once)."""
    global _allowed_ids
    if _allowed_ids is None:
        found: dict[int, object] = {}
        for module_name, name in _ALLOWED_OBJECTS:
            try:
                obj = getattr(importlib.import_module(module_name), name)
            except (ImportError, AttributeError):
                continue  # e.g. no pyarrow, or a pandas without this class
            found[id(obj)] = obj
        _allowed_ids = found
    return _allowed_ids


class _Refused(Exception):
    """A pickle named a global outside the allow-list."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


class _Unavailable(Exception):
    """A pickle needs an allowed module that is not installed (pyarrow for pandas >= 3 string columns)."""

    def __init__(self, module: str):
        super().__init__(module)
        self.module = module


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        module, name = _NAME_RENAMES.get((module, name), (module, name))
        module = _MODULE_RENAMES.get(module, module)
        if module not in _ALLOWED_MODULES or "." in name or (name.startswith("__") and name.endswith("__")):
            raise _Refused(module, name)
        try:
            imported = importlib.import_module(module)
        except ImportError:
            raise _Unavailable(module) from None
        obj = getattr(imported, name, None)
        if obj is None:
            raise _Refused(module, name)
        if id(obj) not in _allowed_object_ids():
            raise _Refused(module, name)
        return obj

    def persistent_load(self, pid):
        raise _Refused("<persistent id>", repr(pid)[:40])


def _open_decompressed(path: Path, data: bytes) -> bytes:
    """The pickle bytes, decompressed by extension as pandas.to_pickle compresses them."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".gz":
            return gzip.decompress(data)
        if suffix == ".bz2":
            return bz2.decompress(data)
        if suffix == ".xz":
            return lzma.decompress(data)
    except (OSError, EOFError, ValueError, lzma.LZMAError) as exc:
        raise UserError(f"{path}: cannot decompress ({exc}); the file is truncated or not {suffix} "
                        f"compressed; re-run extract.py to write it again") from None
    if suffix in (".zip", ".zst", ".zstd", ".tar"):
        raise UserError(f"{path}: {suffix} compressed pickles are not read safely; decompress it to .pkl, "
                        f"or pass --trust-pickle if you trust the file")
    return data


def read_features(path, trust: bool = False) -> pd.DataFrame:
    """Load a pose-evaluation feature pickle as a validated DataFrame.

    Returns a new DataFrame with exactly the columns ``file_name`` (str), ``frame_number`` (int64) and
    ``value`` (numeric ndarray or None), rows in file order; ``df.attrs["source"]`` holds the path.
    Raises :class:`UserError` for a missing, truncated, unsafe or malformed file. With ``trust=True``
    the file is loaded with ``pandas.read_pickle``, which can run code stored in the pickle.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; pass the .pkl written by pose-evaluation's extract.py")
    if path.is_dir():
        raise UserError(f"{path}: is a directory; pass the .pkl file written by extract.py")
    if trust:
        try:
            obj = pd.read_pickle(path)
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
                ImportError, IndexError, KeyError, OSError) as exc:
            raise UserError(f"{path}: cannot unpickle ({type(exc).__name__}: {exc}); the file is truncated "
                            f"or not a pandas pickle; re-run extract.py to write it again") from None
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UserError(f"{path}: cannot read ({exc.strerror}); check the file's permissions") from None
        data = _open_decompressed(path, data)
        if not data:
            raise UserError(f"{path}: empty file; re-run extract.py to write it again")
        try:
            obj = _RestrictedUnpickler(io.BytesIO(data)).load()
        except _Refused as exc:
            raise UserError(f"{path}: refusing to unpickle: it references {exc.module}.{exc.name}, which a "
                            f"pose-evaluation features table never needs, and unpickling it could run code; "
                            f"pass --trust-pickle only if you trust this file") from None
        except _Unavailable as exc:
            package = exc.module.split(".")[0]
            raise UserError(f"{path}: the pickle needs {exc.module}, which is not importable here; install "
                            f"{package} (pip install {package}) to read it") from None
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError,
                KeyError, UnicodeDecodeError, MemoryError, RecursionError, NotImplementedError) as exc:
            what = "truncated" if isinstance(exc, EOFError) else "corrupt"
            raise UserError(f"{path}: cannot unpickle ({type(exc).__name__}: {str(exc)[:120]}); the file is "
                            f"{what} or not a pandas pickle; re-run extract.py to write it again") from None
    df = validate_features(obj, str(path))
    df.attrs["source"] = str(path)
    return df


def _is_missing_value(value) -> bool:
    return value is None


def validate_features(obj, where: str) -> pd.DataFrame:
    """Check that ``obj`` is a feature table; return a normalised copy (three columns, str/int64/object).

    ``where`` names the table in error messages (a file path, or e.g. "generated features").
    """
    if not isinstance(obj, pd.DataFrame):
        raise UserError(f"{where}: holds a {type(obj).__module__}.{type(obj).__qualname__}, not a pandas "
                        f"DataFrame; pass a features pickle written by pose-evaluation's extract.py")
    missing = [c for c in COLUMNS if c not in obj.columns]
    if missing:
        raise UserError(f"{where}: missing column(s) {', '.join(missing)} (has: "
                        f"{', '.join(map(str, obj.columns))}); pass a features pickle written by extract.py, "
                        f"with columns file_name, frame_number, value")
    n = len(obj)
    names = list(obj["file_name"])
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise UserError(f"{where}: row {i}: file_name is {name!r}, not a str; every row must name its "
                            f"video as extract.py writes it (e.g. x.mp4)")
    frames: list[int] = []
    for i, number in enumerate(obj["frame_number"]):
        if isinstance(number, (bool, np.bool_)) or not isinstance(number, numbers.Real) \
                or not math.isfinite(float(number)) or float(number) != int(number):
            raise UserError(f"{where}: row {i} ({names[i]}): frame_number is {number!r}, not an integer; "
                            f"frame numbers are 0-based ints as extract.py writes them")
        frames.append(int(number))
    values = list(obj["value"])
    for i, value in enumerate(values):
        if _is_missing_value(value):
            continue
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            shown = type(value).__name__ if not isinstance(value, np.ndarray) else f"array of {value.dtype}"
            raise UserError(f"{where}: row {i} ({names[i]}, frame {frames[i]}): value is {shown}; it must be a "
                            f"numeric numpy array, or None where nothing was detected")
    out = pd.DataFrame({"file_name": pd.Series(names, dtype=object),
                        "frame_number": np.asarray(frames, dtype=np.int64).reshape(n),
                        "value": pd.Series(values, dtype=object)})
    return out


# --- writer -----------------------------------------------------------------------------------------

class _RawArray:
    """Stands for an array's bytes; pickles as ``numpy.ndarray(shape, dtype, buffer)``."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array


class _FeaturePickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, _RawArray):
            a = obj.array
            return np.ndarray, (tuple(int(s) for s in a.shape), a.dtype.str, a.tobytes(order="C"))
        if type(obj) is np.ndarray:
            # numpy.array(...) copies the read-only bytes-backed array into a writable one
            return np.array, (_RawArray(obj),)
        return NotImplemented


def features_pickle_bytes(df: pd.DataFrame) -> bytes:
    """The bytes :func:`write_features` writes for a (validated) feature table."""
    table = validate_features(df, "features table")
    data = {
        "file_name": [str(v) for v in table["file_name"]],
        "frame_number": [int(v) for v in table["frame_number"]],
        "value": [None if _is_missing_value(v) else np.asarray(v) for v in table["value"]],
    }
    buf = io.BytesIO()
    # REDUCE pandas.DataFrame(data, None, columns): the constructor extract.py itself uses
    _FeaturePickler(buf, protocol=PICKLE_PROTOCOL).dump(_TableReduce(data))
    return buf.getvalue()


class _TableReduce:
    __slots__ = ("data",)

    def __init__(self, data: dict):
        self.data = data

    def __reduce__(self):
        return pd.DataFrame, (self.data, None, list(COLUMNS))


def write_features(df: pd.DataFrame, path) -> Path:
    """Write ``df`` atomically as a pose-evaluation features pickle that any pandas can read.

    The file appears complete or not at all (temporary file in the same folder, then ``os.replace``),
    with mode 0666 less the umask (0644 under umask 022). Returns the path.
    """
    path = Path(path)
    payload = features_pickle_bytes(df)
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"{path}: folder {parent} does not exist; create it first or pick another path")
    if path.is_dir():
        raise UserError(f"{path}: is a directory; pass a file name such as features.pkl")
    if path.suffix.lower() in (".gz", ".bz2", ".xz", ".zip", ".zst", ".tar"):
        raise UserError(f"{path}: compressed output is not supported; use a .pkl name")
    tmp = parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise UserError(f"{path}: cannot create a file in {parent} ({exc.strerror}); "
                        f"check the folder's permissions") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
