//! Python bindings of terrastat: a thin layer over `terrastat-indicators`.
//!
//! Arrow crosses the boundary through the Arrow PyCapsule interface
//! (`pyo3-arrow`), the GIL is released while the engine runs (on its own
//! thread, while the calling thread watches for Ctrl-C), progress goes to an
//! optional Python callback, and engine errors become the `TerrastatError`
//! hierarchy.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PyTable;
use terrastat_core::Progress;
use terrastat_indicators::spec::Spec;
use terrastat_indicators::{Error, ErrorKind};

create_exception!(
    _terrastat,
    TerrastatError,
    PyException,
    "Base class of every terrastat error."
);
create_exception!(
    _terrastat,
    SpecError,
    TerrastatError,
    "The spec is invalid (the message names the file, line and key)."
);
create_exception!(
    _terrastat,
    InputError,
    TerrastatError,
    "An input cannot be used: missing file, bad format, wrong column, empty layer…"
);
create_exception!(
    _terrastat,
    CrsError,
    TerrastatError,
    "A CRS is missing, unknown, or differs from the working CRS without the `proj` feature."
);

create_exception!(
    _terrastat,
    InternalError,
    TerrastatError,
    "A bug of terrastat: an internal invariant was broken. Please report it."
);

/// The exceptions of I/O failures, by the operating system's reason: each
/// an `InputError` and the built-in exception of that reason (so both
/// `except FileNotFoundError` and `except terrastat.InputError` catch it).
const IO_EXCEPTIONS: &std::ffi::CStr = c"
class InputFileNotFoundError(InputError, FileNotFoundError):
    'A file of the spec does not exist.'
class InputPermissionError(InputError, PermissionError):
    'A file of the spec cannot be read or written for lack of permission.'
class InputOSError(InputError, OSError):
    'A file of the spec could not be read or written.'
";

/// Map an engine error to its Python exception, keeping the message: every
/// kind of error (`terrastat_indicators::ErrorKind`, a closed set) has its
/// exception, I/O errors by their reason as polars does.
fn to_py(e: Error) -> PyErr {
    use std::io::ErrorKind as Io;
    let msg = e.to_string();
    let io = |name: &str, msg: String| {
        Python::attach(|py| {
            match py
                .import("terrastat._terrastat")
                .and_then(|m| m.getattr(name))
            {
                Ok(t) => match t.cast_into::<pyo3::types::PyType>() {
                    Ok(t) => PyErr::from_type(t, msg),
                    Err(_) => InputError::new_err(msg),
                },
                Err(_) => InputError::new_err(msg),
            }
        })
    };
    match e.kind() {
        ErrorKind::Spec => SpecError::new_err(msg),
        ErrorKind::Crs => CrsError::new_err(msg),
        ErrorKind::Io(Io::NotFound) => io("InputFileNotFoundError", msg),
        ErrorKind::Io(Io::PermissionDenied) => io("InputPermissionError", msg),
        ErrorKind::Io(_) => io("InputOSError", msg),
        ErrorKind::Input | ErrorKind::NotFound => InputError::new_err(msg),
        ErrorKind::Option => PyValueError::new_err(msg),
        ErrorKind::Cancelled => PyKeyboardInterrupt::new_err("terrastat run interrupted"),
        ErrorKind::Internal => InternalError::new_err(msg),
    }
}

/// Progress reported to a Python callable `callback(stage, done, total)`
/// (`total` is 0 when unknown); cancellation comes from the watching thread.
struct PyProgress {
    callback: Option<Py<PyAny>>,
    cancel: Arc<AtomicBool>,
    stage: std::sync::Mutex<(String, u64, u64)>,
    /// The exception the callback raised, re-raised when the run stops.
    failure: Arc<std::sync::Mutex<Option<PyErr>>>,
}

impl PyProgress {
    fn report(&self) {
        let Some(cb) = &self.callback else { return };
        let (stage, done, total) = match self.stage.lock() {
            Ok(s) => s.clone(),
            Err(_) => return,
        };
        Python::attach(|py| {
            if let Err(e) = cb.call1(py, (stage, done, total)) {
                // A failing callback stops the run rather than being ignored.
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert(e);
                }
                self.cancel.store(true, Ordering::Relaxed);
            }
        });
    }
}

impl Progress for PyProgress {
    fn begin(&self, label: &str, total: u64) {
        if let Ok(mut s) = self.stage.lock() {
            *s = (label.to_string(), 0, total);
        }
        self.report();
    }
    fn advance(&self, n: u64) {
        if let Ok(mut s) = self.stage.lock() {
            s.1 += n;
        }
        self.report();
    }
    fn end(&self) {
        if let Ok(mut s) = self.stage.lock() {
            s.1 = s.2.max(s.1);
        }
        self.report();
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Run the spec at `spec` and return `(tables, catalog_json)`: one Arrow
/// table per zone layer (PyCapsule objects), and the catalog as JSON text.
#[pyfunction]
#[pyo3(signature = (spec, threads=None, progress=None, geometry=false))]
fn run(
    py: Python<'_>,
    spec: PathBuf,
    threads: Option<usize>,
    progress: Option<Py<PyAny>>,
    geometry: bool,
) -> PyResult<(Py<PyDict>, String)> {
    let spec = Spec::load(&spec).map_err(to_py)?;
    execute(py, spec, BTreeMap::new(), threads, progress, geometry, None)
}

/// A spec from its parts (JSON with a spec file's structure: `crs`,
/// `layers`, `rasters`, `zones`, `tables`, `quality`, `indicators`; what
/// `run(dict)` and `Engine.compute` pass), built with the Rust builder,
/// with layers from Arrow tables by name (`path = "memory:<name>"`).
#[pyfunction]
#[pyo3(signature = (parts, base, data, threads=None, progress=None, geometry=false))]
fn compute_parts(
    py: Python<'_>,
    parts: String,
    base: PathBuf,
    data: HashMap<String, PyTable>,
    threads: Option<usize>,
    progress: Option<Py<PyAny>>,
    geometry: bool,
) -> PyResult<(Py<PyDict>, String)> {
    let value: serde_json::Value =
        serde_json::from_str(&parts).map_err(|e| SpecError::new_err(e.to_string()))?;
    let spec = terrastat_indicators::SpecBuilder::from_json(&value, &base)
        .and_then(|b| b.build())
        .map_err(to_py)?;
    let memory = raw_layers(data)?;
    execute(py, spec, memory, threads, progress, geometry, None)
}

/// The indicators of the spec over `layer` that need all its features at
/// once, as (name, kind) (see `terrastat.spark`).
#[pyfunction]
fn at_once(text: String, path: PathBuf, layer: String) -> PyResult<Vec<(String, String)>> {
    let spec = Spec::from_str(&text, &path).map_err(to_py)?;
    Ok(terrastat_indicators::stream::at_once(&spec, &layer)
        .into_iter()
        .map(|(n, k)| (n, k.to_string()))
        .collect())
}

/// Arrow tables by name as raw layers (checked later, like files).
fn raw_layers(
    data: HashMap<String, PyTable>,
) -> PyResult<BTreeMap<String, terrastat_core::RawLayer>> {
    let mut memory = BTreeMap::new();
    for (name, table) in data {
        let (batches, schema) = table.into_inner();
        let label = PathBuf::from(format!("memory:{name}"));
        let raw = terrastat_core::io::raw_from_arrow(&label, schema, &batches)
            .map_err(|e| to_py(e.into()))?;
        memory.insert(name, raw);
    }
    Ok(memory)
}

/// The partials of one partition of `layer` (a distributed run's kernel,
/// see `terrastat.spark`): `data` holds the partition's features of `layer`
/// and of the layers its indicators relate to; zones are read from the
/// spec's paths once per process. Returns the long partials table.
#[pyfunction]
fn partition_partials(
    py: Python<'_>,
    text: String,
    path: PathBuf,
    layer: String,
    data: HashMap<String, PyTable>,
) -> PyResult<PyTable> {
    let spec = Spec::from_str(&text, &path).map_err(to_py)?;
    let memory = raw_layers(data)?;
    let batch = py
        .detach(|| terrastat_indicators::distributed::partition_partials(&spec, &layer, memory))
        .map_err(to_py)?;
    PyTable::try_new(vec![batch.clone()], batch.schema())
}

/// The final step of a distributed run: `layer`'s streamable indicators
/// finished from the combined `partials`, the rest computed from `data`
/// (by name) or the spec's paths.
#[pyfunction]
#[pyo3(signature = (text, path, layer, partials, data, threads=None, progress=None, geometry=false))]
#[allow(clippy::too_many_arguments)]
fn finish_partials(
    py: Python<'_>,
    text: String,
    path: PathBuf,
    layer: String,
    partials: PyTable,
    data: HashMap<String, PyTable>,
    threads: Option<usize>,
    progress: Option<Py<PyAny>>,
    geometry: bool,
) -> PyResult<(Py<PyDict>, String)> {
    let spec = Spec::from_str(&text, &path).map_err(to_py)?;
    let memory = raw_layers(data)?;
    let (batches, _) = partials.into_inner();
    execute(
        py,
        spec,
        memory,
        threads,
        progress,
        geometry,
        Some((layer, batches)),
    )
}

/// A table's WKB geometries (column `geometry`), in `crs`.
fn geometries_of(table: PyTable) -> PyResult<Vec<Option<geo::Geometry>>> {
    let (batches, schema) = table.into_inner();
    let raw = terrastat_core::io::raw_from_arrow(std::path::Path::new("memory"), schema, &batches)
        .map_err(|e| to_py(e.into()))?;
    Ok(raw.geometries.into_iter().map(|g| g.ok()).collect())
}

/// The H3 cell (as int64; -1 for none) at `res` of each feature's centroid.
#[pyfunction]
fn centroid_keys(py: Python<'_>, table: PyTable, crs: String, res: u8) -> PyResult<Vec<i64>> {
    let geoms = geometries_of(table)?;
    py.detach(|| -> terrastat_core::Result<Vec<i64>> {
        let crs = terrastat_core::Crs::parse(&crs)?;
        let lonlat = terrastat_core::h3::LonLat::new(&crs)?;
        let r = terrastat_core::h3::resolution(res)?;
        use rayon::prelude::*;
        Ok(geoms
            .par_iter()
            .map(|g| {
                g.as_ref()
                    .and_then(terrastat_core::centroid)
                    .and_then(|c| lonlat.cell_of(c, r).ok())
                    .map_or(-1, |c| u64::from(c) as i64)
            })
            .collect())
    })
    .map_err(|e| to_py(e.into()))
}

/// For each feature, the H3 cells at `res` meeting its bounding box grown
/// by `margin` (working-CRS units), as (row, cell) pairs; when one of them
/// is in `split`, also every cell at `fine` meeting the box.
#[pyfunction]
#[pyo3(signature = (table, crs, res, margin, split=Vec::new(), fine=None))]
fn meeting_keys(
    py: Python<'_>,
    table: PyTable,
    crs: String,
    res: u8,
    margin: f64,
    split: Vec<i64>,
    fine: Option<u8>,
) -> PyResult<(Vec<i64>, Vec<i64>)> {
    let geoms = geometries_of(table)?;
    py.detach(|| -> terrastat_core::Result<(Vec<i64>, Vec<i64>)> {
        use geo::BoundingRect;
        use rayon::prelude::*;
        let crs = terrastat_core::Crs::parse(&crs)?;
        let lonlat = terrastat_core::h3::LonLat::new(&crs)?;
        let r = terrastat_core::h3::resolution(res)?;
        let fine = fine.map(terrastat_core::h3::resolution).transpose()?;
        let split: std::collections::HashSet<i64> = split.into_iter().collect();
        let mode = terrastat_core::h3::CellMode::Intersects;
        let per: Vec<Vec<i64>> = geoms
            .par_iter()
            .map(|g| -> terrastat_core::Result<Vec<i64>> {
                let Some(b) = g.as_ref().and_then(|g| g.bounding_rect()) else {
                    return Ok(Vec::new());
                };
                let grown = geo::Rect::new(
                    (b.min().x - margin, b.min().y - margin),
                    (b.max().x + margin, b.max().y + margin),
                );
                let cover = [terrastat_core::PreparedPolygon::new(geo::MultiPolygon(
                    vec![grown.to_polygon()],
                ))];
                let mut out: Vec<i64> = terrastat_core::h3::cover_cells(&cover, r, mode, &lonlat)?
                    .into_iter()
                    .map(|c| u64::from(c) as i64)
                    .collect();
                // A feature keyed by a fine cell has its centroid in that cell,
                // whose H3 parent need not be the coarse cell holding the
                // centroid: every fine cell meeting the box is a key then.
                if let Some(f) = fine.filter(|_| out.iter().any(|k| split.contains(k))) {
                    out.extend(
                        terrastat_core::h3::cover_cells(&cover, f, mode, &lonlat)?
                            .into_iter()
                            .map(|c| u64::from(c) as i64),
                    );
                }
                Ok(out)
            })
            .collect::<terrastat_core::Result<_>>()?;
        let mut rows = Vec::new();
        let mut keys = Vec::new();
        for (row, ks) in per.into_iter().enumerate() {
            for k in ks {
                rows.push(row as i64);
                keys.push(k);
            }
        }
        Ok((rows, keys))
    })
    .map_err(|e| to_py(e.into()))
}

/// The largest diagonal of the features' bounding boxes (0 for none): no
/// point of a feature is farther than this from its centroid.
#[pyfunction]
fn max_extent(table: PyTable) -> PyResult<f64> {
    use geo::BoundingRect;
    Ok(geometries_of(table)?
        .iter()
        .filter_map(|g| g.as_ref()?.bounding_rect())
        .map(|b| b.width().hypot(b.height()))
        .fold(0.0, f64::max))
}

fn execute(
    py: Python<'_>,
    spec: Spec,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
    threads: Option<usize>,
    progress: Option<Py<PyAny>>,
    geometry: bool,
    distributed: Option<(String, Vec<arrow_array::RecordBatch>)>,
) -> PyResult<(Py<PyDict>, String)> {
    let cancel = Arc::new(AtomicBool::new(false));
    let failure = Arc::new(std::sync::Mutex::new(None));
    let reporter = PyProgress {
        callback: progress,
        cancel: cancel.clone(),
        stage: std::sync::Mutex::new((String::new(), 0, 0)),
        failure: failure.clone(),
    };
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let work = || match distributed {
            Some((layer, partials)) => terrastat_indicators::run::compute_distributed(
                &spec, &reporter, memory, &layer, partials,
            ),
            None => terrastat_indicators::run::compute_with(&spec, &reporter, memory),
        };
        let out = match threads {
            Some(n) => match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
                Ok(pool) => pool.install(work),
                Err(e) => Err(Error::Option {
                    option: "threads".into(),
                    message: e.to_string(),
                }),
            },
            None => work(),
        };
        // Hand the results over first, then free the source layers here, on
        // the engine's thread, while the caller goes on.
        match out {
            Ok(mut o) => {
                let layers = std::mem::take(&mut o.inputs.layers);
                let _ = tx.send(Ok(o));
                drop(layers);
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    // Wait without the GIL; between waits, let Python see Ctrl-C.
    let mut rx = rx;
    let out = loop {
        let (got, back) = py.detach(move || (rx.recv_timeout(Duration::from_millis(100)), rx));
        rx = back;
        match got {
            Ok(out) => break out,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    cancel.store(true, Ordering::Relaxed);
                    py.detach(move || {
                        let _ = rx.recv();
                        let _ = worker.join();
                    });
                    return Err(e);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(TerrastatError::new_err(
                    "the terrastat worker stopped unexpectedly",
                ))
            }
        }
    };
    // The worker only frees memory from here on: it is not waited for.
    drop(worker);
    if let Some(e) = failure.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    let out = out.map_err(to_py)?;
    let tables = PyDict::new(py);
    for t in out.tables {
        let batch = if geometry {
            with_zone_geometry(&t.batch, &out.inputs.zones[&t.zones])?
        } else {
            t.batch.clone()
        };
        let table = PyTable::try_new(vec![batch.clone()], batch.schema())?;
        tables.set_item(&t.zones, Py::new(py, table)?)?;
        // The quality records travel in the same dict; Python splits them off.
        let quality = PyTable::try_new(vec![t.quality.clone()], t.quality.schema())?;
        tables.set_item(format!("quality:{}", t.zones), Py::new(py, quality)?)?;
    }
    let catalog =
        serde_json::to_string(&out.catalog).map_err(|e| TerrastatError::new_err(e.to_string()))?;
    Ok((tables.unbind(), catalog))
}

/// `batch` with the zones' polygons appended as a GeoArrow WKB column
/// `geometry` carrying the CRS (PROJJSON) in its extension metadata.
fn with_zone_geometry(
    batch: &arrow_array::RecordBatch,
    zones: &terrastat_core::Zones,
) -> PyResult<arrow_array::RecordBatch> {
    use std::sync::Arc;
    let (b, _) = terrastat_core::io::with_geometry_column(
        batch,
        "geometry",
        zones.crs(),
        &zones.geometries(),
    )
    .map_err(|e| to_py(e.into()))?;
    let schema = b.schema();
    let mut fields: Vec<arrow_schema::FieldRef> = schema.fields().iter().cloned().collect();
    let last = fields.len() - 1;
    let meta = serde_json::json!({ "crs": zones.crs().to_projjson() }).to_string();
    let field = fields[last].as_ref().clone().with_metadata(
        [
            (
                "ARROW:extension:name".to_string(),
                "geoarrow.wkb".to_string(),
            ),
            ("ARROW:extension:metadata".to_string(), meta),
        ]
        .into(),
    );
    fields[last] = Arc::new(field);
    arrow_array::RecordBatch::try_new(
        Arc::new(arrow_schema::Schema::new(fields)),
        b.columns().to_vec(),
    )
    .map_err(|e| TerrastatError::new_err(e.to_string()))
}

/// The engine version.
/// What a raster band is: size, geotransform, CRS, nodata, scale/offset,
/// block size, data type (the file is opened, not read).
#[pyfunction]
#[pyo3(signature = (path, band=1))]
fn raster_info(py: Python<'_>, path: PathBuf, band: usize) -> PyResult<Py<PyDict>> {
    let src = terrastat_core::raster::open(&path, band, None)
        .map_err(|e| to_py(terrastat_indicators::Error::Core(e)))?;
    let i = src.info();
    let t = &i.transform;
    let d = PyDict::new(py);
    d.set_item("path", i.path.to_string_lossy().to_string())?;
    d.set_item("band", i.band)?;
    d.set_item("width", i.width)?;
    d.set_item("height", i.height)?;
    d.set_item("transform", (t.x0, t.dx, t.rx, t.y0, t.ry, t.dy))?;
    d.set_item("crs", i.crs.as_ref().map(|c| c.to_string()))?;
    d.set_item("nodata", i.nodata)?;
    d.set_item("scale", i.scale)?;
    d.set_item("offset", i.offset)?;
    d.set_item("block", i.block)?;
    d.set_item("data_type", &i.data_type)?;
    Ok(d.unbind())
}

#[pyfunction]
fn version() -> &'static str {
    terrastat_core::VERSION
}

#[pymodule]
fn _terrastat(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(compute_parts, m)?)?;
    m.add_function(wrap_pyfunction!(at_once, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(raster_info, m)?)?;
    m.add_function(wrap_pyfunction!(partition_partials, m)?)?;
    m.add_function(wrap_pyfunction!(finish_partials, m)?)?;
    m.add_function(wrap_pyfunction!(centroid_keys, m)?)?;
    m.add_function(wrap_pyfunction!(meeting_keys, m)?)?;
    m.add_function(wrap_pyfunction!(max_extent, m)?)?;
    let py = m.py();
    m.add("TerrastatError", py.get_type::<TerrastatError>())?;
    m.add("SpecError", py.get_type::<SpecError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("CrsError", py.get_type::<CrsError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    let classes = PyDict::new(py);
    classes.set_item("InputError", py.get_type::<InputError>())?;
    py.run(IO_EXCEPTIONS, Some(&classes), None)?;
    for name in [
        "InputFileNotFoundError",
        "InputPermissionError",
        "InputOSError",
    ] {
        if let Some(t) = classes.get_item(name)? {
            t.setattr("__module__", "terrastat")?;
            m.add(name, t)?;
        }
    }
    Ok(())
}
