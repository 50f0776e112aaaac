"""terrastat: territorial indicators from geodata layers.

Exact (equal to a brute-force computation), deterministic (same bytes
whatever the thread count) and documented (every indicator carries its
definition, unit, sources and lineage). The engine is Rust; this package is
a thin layer over it. Arrow tables come back through the Arrow PyCapsule
interface: ``pyarrow.table(t)``, ``polars.DataFrame(t)`` or DuckDB read them
without copying.

Example (from a checkout of the repository)::

    import terrastat
    res = terrastat.run("data/samples/idf92/indicators.toml")
    res["communes"]            # a pyarrow.Table: insee, then one column per indicator
    res.catalog["indicators"]  # definitions, units, sources and lineage
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional, Union

from terrastat._terrastat import (
    CrsError,
    InputError,
    SpecError,
    TerrastatError,
    version,
)
from terrastat._terrastat import run as _run

__all__ = [
    "CrsError",
    "InputError",
    "Results",
    "SpecError",
    "TerrastatError",
    "run",
    "version",
]

__version__ = version()


class Results(dict):
    """The tables of a run, by zone layer name, with the run's catalog.

    Each value is an Arrow table: a ``pyarrow.Table`` when pyarrow is
    installed (``as_pyarrow=True``, the default), otherwise an object
    implementing ``__arrow_c_stream__``.
    """

    catalog: dict

    def __init__(self, tables: dict, catalog: dict):
        super().__init__(tables)
        self.catalog = catalog

    def to_pandas(self, zones: str):
        """The table of zone layer ``zones`` as a pandas DataFrame."""
        import pyarrow as pa

        return pa.table(self[zones]).to_pandas()


def run(
    spec: Union[str, "os.PathLike[str]"],
    threads: Optional[int] = None,
    progress: Optional[Callable[[str, int, int], Any]] = None,
    as_pyarrow: bool = True,
) -> Results:
    """Compute every indicator of the spec file ``spec``.

    ``threads``: worker threads (default: all cores). ``progress``: called as
    ``progress(stage, done, total)`` from the engine's threads (``total`` is 0
    when unknown); exceptions it raises stop the run. Ctrl-C interrupts the
    run (``KeyboardInterrupt``). Errors raise :class:`SpecError`,
    :class:`InputError` or :class:`CrsError` (all :class:`TerrastatError`).

    Returns :class:`Results`: zone layer name → Arrow table, and ``.catalog``.
    """
    tables, catalog = _run(os.fspath(spec), threads, progress)
    if as_pyarrow:
        try:
            import pyarrow as pa
        except ImportError:
            pass
        else:
            tables = {k: pa.table(v) for k, v in tables.items()}
    return Results(tables, json.loads(catalog))
