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
from typing import Any, Callable, Optional, Sequence, Union

from terrastat._terrastat import (
    CrsError,
    InputError,
    InputFileNotFoundError,
    InputOSError,
    InputPermissionError,
    InternalError,
    SpecError,
    TerrastatError,
    raster_info,
    version,
)
from terrastat._terrastat import compute_parts as _compute_parts
from terrastat._terrastat import run as _run

__all__ = [
    "CrsError",
    "Engine",
    "InputError",
    "InputFileNotFoundError",
    "InputOSError",
    "InputPermissionError",
    "InternalError",
    "Results",
    "SpecError",
    "TerrastatError",
    "raster_info",
    "raster_to_h3",
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
    #: The quality records of every value, by zone layer name: one row per
    #: zone and published indicator (``n_features``, ``completeness``,
    #: ``coverage``, ``flag``, ``reason``), as in ``<zones>.quality.parquet``.
    quality: dict

    def __init__(self, tables: dict, catalog: dict, quality: dict | None = None):
        super().__init__(tables)
        self.catalog = catalog
        self.quality = quality or {}

    def to_pandas(self, zones: str):
        """The table of zone layer ``zones`` as a pandas DataFrame."""
        import pyarrow as pa

        return pa.table(self[zones]).to_pandas()

    def to_geopandas(self, zones: str):
        """The table of zone layer ``zones`` as a GeoDataFrame with the zone
        polygons (needs a run with ``geometry=True``), in the working CRS."""
        import geopandas as gpd
        import pyarrow as pa

        table = pa.table(self[zones])
        if "geometry" not in table.column_names:
            raise ValueError("no zone geometries: run with geometry=True")
        return gpd.GeoDataFrame.from_arrow(table)


def run(
    spec: Union[str, "os.PathLike[str]", dict],
    threads: Optional[int] = None,
    progress: Optional[Callable[[str, int, int], Any]] = None,
    as_pyarrow: bool = True,
    geometry: bool = False,
) -> Results:
    """Compute every indicator of ``spec``: a spec file, or a dict with the
    file's structure (relative paths then resolve from the current directory).

    ``threads``: worker threads (default: all cores). ``progress``: called as
    ``progress(stage, done, total)`` from the engine's threads (``total`` is 0
    when unknown); exceptions it raises stop the run. Ctrl-C interrupts the
    run (``KeyboardInterrupt``). Errors raise :class:`SpecError`,
    :class:`InputError` or :class:`CrsError` (all :class:`TerrastatError`).

    ``geometry=True`` appends the zone polygons (a GeoArrow WKB column
    ``geometry`` with the CRS) to every table, for :meth:`Results.to_geopandas`.

    Returns :class:`Results`: zone layer name → Arrow table, and ``.catalog``.
    """
    if isinstance(spec, dict):
        # The dict goes to terrastat's Rust builder, checked as a file is.
        tables, catalog = _compute_parts(
            json.dumps(_plain(spec)),
            os.getcwd(),
            {},
            threads,
            progress,
            geometry,
        )
    else:
        tables, catalog = _run(os.fspath(spec), threads, progress, geometry)
    return _results(tables, catalog, as_pyarrow)


def raster_to_h3(
    raster: Union[str, "os.PathLike[str]"],
    resolution: int,
    stats: Sequence[str] = ("mean",),
    band: int = 1,
    crs: Optional[str] = None,
    mode: str = "intersects",
    threads: Optional[int] = None,
    progress: Optional[Callable[[str, int, int], Any]] = None,
):
    """Aggregate a raster onto the H3 cells of ``resolution`` over its
    extent, with exact coverage weights (each pixel counts by the fraction of
    it inside each cell): a ``pyarrow.Table`` with ``h3``, ``h3_str`` and one
    column per statistic (``count``, ``sum``, ``mean``, ``min``, ``max``,
    ``stdev``, ``majority``, ``minority``, ``variety``, ``frac``).

    ``crs``: the working CRS the cells are drawn in; by default the raster's
    own (which must then be projected). ``mode``: how cells are chosen over
    the extent (see the README's "H3 zones").

    Example (from a checkout of the repository)::

        t = terrastat.raster_to_h3("data/samples/olinda/ndvi.tif", 8, stats=["mean", "count"])
        t.column_names  # ['h3', 'h3_str', 'mean', 'count']
    """
    crs = crs or raster_info(raster, band)["crs"]
    if crs is None:
        raise CrsError(f"{raster}: the raster has no CRS terrastat can name; pass crs=...")
    eng = Engine(crs=crs).add_raster("raster", raster, band=band)
    eng = eng.add_zones("h3", h3=resolution, cover="raster", mode=mode)
    for s in stats:
        eng = eng.add_indicator(name=s, kind="zonal", raster="raster", stat=s)
    return eng.compute(threads=threads, progress=progress)["h3"]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    raise TypeError(f"cannot put {v!r} ({type(v).__name__}) in a terrastat spec")


def _plain(v: Any) -> Any:
    """A spec value as JSON sees it (paths as text, tuples as lists)."""
    if isinstance(v, bool) or isinstance(v, (int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if x is not None}
    raise TypeError(f"cannot put {v!r} ({type(v).__name__}) in a terrastat spec")


def _table(header: str, keys: dict) -> str:
    lines = [header] if header else []
    lines += [f"{k} = {_toml_value(v)}" for k, v in keys.items() if v is not None]
    return "\n".join(lines) + "\n"


class Engine:
    """Build a computation in code, with layers from files or Arrow data.

    ``data`` is a path (GeoParquet, GeoJSON, FlatGeobuf…) or anything that
    speaks the Arrow PyCapsule interface (``__arrow_c_stream__``): a pyarrow
    Table, a polars DataFrame, a DuckDB relation, ``GeoDataFrame.to_arrow()``.
    Geometry: a ``geoarrow.wkb`` or native GeoArrow column (CRS read from its
    metadata), or a WKB binary column named ``geometry`` (then pass ``crs``).

    Example, with two square zones and three points as plain Arrow tables
    (WKB geometry columns, so the CRS is given):

    >>> import pyarrow as pa, shapely, terrastat
    >>> zones = pa.table({"id": ["a", "b"],
    ...     "geometry": shapely.to_wkb(shapely.box([0, 10], 0, [10, 20], 10))})
    >>> pts = pa.table({"v": [1.0, 2.0, 3.0],
    ...     "geometry": shapely.to_wkb(shapely.points([1, 2, 15], [1, 2, 5]))})
    >>> eng = terrastat.Engine(crs="EPSG:2154")
    >>> eng = eng.add_layer("pts", pts, crs="EPSG:2154").add_zones("z", zones, id="id", crs="EPSG:2154")
    >>> eng = eng.add_indicator(name="n", kind="count", layer="pts")
    >>> eng = eng.add_indicator(name="s", kind="sum", layer="pts", column="v")
    >>> eng.compute()["z"].to_pydict()
    {'id': ['a', 'b'], 'n': [2, 1], 's': [3.0, 3.0]}
    """

    def __init__(self, crs: str = "EPSG:2154"):
        self._crs = crs
        self._layers: dict = {}
        self._zones: dict = {}
        self._rasters: dict = {}
        self._indicators: list = []
        self._data: dict = {}

    def _source(self, name: str, data: Any) -> str:
        if isinstance(data, (str, os.PathLike)):
            return os.path.abspath(os.fspath(data))
        if not hasattr(data, "__arrow_c_stream__"):
            raise TypeError(
                f"{name}: expected a path or an object with __arrow_c_stream__, got {type(data).__name__}"
            )
        self._data[name] = data
        return f"memory:{name}"

    def add_layer(self, name: str, data: Any, crs: Optional[str] = None, invalid: Optional[str] = None) -> "Engine":
        """Add a source layer (see the class docs for ``data``)."""
        self._layers[name] = {"path": self._source(name, data), "crs": crs, "invalid": invalid}
        return self

    def add_raster(self, name: str, path: Union[str, "os.PathLike[str]"], band: int = 1, crs: Optional[str] = None) -> "Engine":
        """Add a raster layer: band ``band`` (from 1) of a raster file (GeoTIFF;
        any GDAL raster in a build with the ``gdal`` feature). ``crs`` when the
        file has none. Read by ``kind="zonal"`` indicators (``raster=name``)
        and usable as the ``cover``/``extent`` of H3 and grid zones."""
        self._rasters[name] = {"path": os.path.abspath(os.fspath(path)), "band": band, "crs": crs}
        return self

    def add_zones(
        self, name: str, data: Any = None, id: Optional[str] = None, crs: Optional[str] = None, **keys: Any
    ) -> "Engine":
        """Add a zone layer: polygons with an ``id`` column, or (``data=None``)
        a grid or H3 cells from keys as in the spec (``grid=1000, extent=...``,
        ``h3=9, cover="communes"``, ``rollup=[...]``)."""
        table = dict(keys)
        if data is not None:
            table = {"path": self._source(name, data), "id": id, "crs": crs, **keys}
        self._zones[name] = table
        return self

    def add_indicator(self, **keys: Any) -> "Engine":
        """Add an indicator with the spec's keys (``name``, ``kind``, ``layer``, ...)."""
        self._indicators.append(keys)
        return self

    def spec_text(self) -> str:
        """The TOML spec this engine runs."""
        parts = [f"crs = {_toml_value(self._crs)}\n"]
        parts += [_table(f"[layers.{n}]", k) for n, k in self._layers.items()]
        parts += [_table(f"[rasters.{n}]", k) for n, k in self._rasters.items()]
        parts += [_table(f"[zones.{n}]", k) for n, k in self._zones.items()]
        parts += [_table("[[indicators]]", k) for k in self._indicators]
        return "\n".join(parts)

    def compute(
        self,
        threads: Optional[int] = None,
        progress: Optional[Callable[[str, int, int], Any]] = None,
        as_pyarrow: bool = True,
        geometry: bool = False,
    ) -> Results:
        """Compute every indicator; same arguments, results and errors as :func:`run`.

        The spec is built from the engine's parts by terrastat's Rust builder
        (:meth:`spec_text` shows the same spec as TOML)."""
        parts = {
            "crs": self._crs,
            "layers": _plain(self._layers),
            "rasters": _plain(self._rasters),
            "zones": _plain(self._zones),
            "indicators": [_plain(k) for k in self._indicators],
        }
        tables, catalog = _compute_parts(
            json.dumps(parts),
            os.getcwd(),
            self._data,
            threads,
            progress,
            geometry,
        )
        return _results(tables, catalog, as_pyarrow)


def _results(tables: dict, catalog: str, as_pyarrow: bool) -> Results:
    if as_pyarrow:
        try:
            import pyarrow as pa
        except ImportError:
            pass
        else:
            tables = {k: pa.table(v) for k, v in tables.items()}
    quality = {k[len("quality:"):]: v for k, v in tables.items() if k.startswith("quality:")}
    tables = {k: v for k, v in tables.items() if not k.startswith("quality:")}
    return Results(tables, json.loads(catalog), quality)
