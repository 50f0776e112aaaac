import os
from typing import Any, Callable, Optional, Sequence, Union

from terrastat._terrastat import CrsError as CrsError
from terrastat._terrastat import InputError as InputError
from terrastat._terrastat import InputFileNotFoundError as InputFileNotFoundError
from terrastat._terrastat import InputOSError as InputOSError
from terrastat._terrastat import InputPermissionError as InputPermissionError
from terrastat._terrastat import InternalError as InternalError
from terrastat._terrastat import SpecError as SpecError
from terrastat._terrastat import TerrastatError as TerrastatError
from terrastat._terrastat import raster_info as raster_info
from terrastat._terrastat import version as version

__version__: str

class Results(dict[str, Any]):
    catalog: dict[str, Any]
    def __init__(self, tables: dict[str, Any], catalog: dict[str, Any]) -> None: ...
    def to_pandas(self, zones: str) -> Any: ...
    def to_geopandas(self, zones: str) -> Any: ...

def run(
    spec: Union[str, os.PathLike[str], dict[str, Any]],
    threads: Optional[int] = ...,
    progress: Optional[Callable[[str, int, int], Any]] = ...,
    as_pyarrow: bool = ...,
    geometry: bool = ...,
) -> Results: ...

def raster_to_h3(
    raster: Union[str, os.PathLike[str]],
    resolution: int,
    stats: Sequence[str] = ...,
    band: int = ...,
    crs: Optional[str] = ...,
    mode: str = ...,
    threads: Optional[int] = ...,
    progress: Optional[Callable[[str, int, int], Any]] = ...,
) -> Any: ...

class Engine:
    def __init__(self, crs: str = ...) -> None: ...
    def add_layer(
        self, name: str, data: Any, crs: Optional[str] = ..., invalid: Optional[str] = ...
    ) -> Engine: ...
    def add_raster(
        self, name: str, path: Union[str, os.PathLike[str]], band: int = ..., crs: Optional[str] = ...
    ) -> Engine: ...
    def add_zones(
        self, name: str, data: Any = ..., id: Optional[str] = ..., crs: Optional[str] = ..., **keys: Any
    ) -> Engine: ...
    def add_indicator(self, **keys: Any) -> Engine: ...
    def spec_text(self) -> str: ...
    def compute(
        self,
        threads: Optional[int] = ...,
        progress: Optional[Callable[[str, int, int], Any]] = ...,
        as_pyarrow: bool = ...,
        geometry: bool = ...,
    ) -> Results: ...
