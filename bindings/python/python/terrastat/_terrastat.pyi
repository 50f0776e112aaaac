from typing import Any, Callable, Optional

class TerrastatError(Exception): ...
class SpecError(TerrastatError): ...
class InputError(TerrastatError): ...
class CrsError(TerrastatError): ...

def run(
    spec: str,
    threads: Optional[int] = ...,
    progress: Optional[Callable[[str, int, int], Any]] = ...,
    geometry: bool = ...,
) -> tuple[dict[str, Any], str]: ...
def compute(
    text: str,
    path: str,
    data: dict[str, Any],
    threads: Optional[int] = ...,
    progress: Optional[Callable[[str, int, int], Any]] = ...,
    geometry: bool = ...,
) -> tuple[dict[str, Any], str]: ...
def version() -> str: ...
def raster_info(path: str, band: int = ...) -> dict[str, Any]: ...
def partition_partials(text: str, path: str, layer: str, data: dict[str, Any]) -> Any: ...
def finish_partials(
    text: str,
    path: str,
    layer: str,
    partials: Any,
    data: dict[str, Any],
    threads: Optional[int] = ...,
    progress: Optional[Callable[[str, int, int], Any]] = ...,
    geometry: bool = ...,
) -> tuple[dict[str, Any], str]: ...
def centroid_keys(table: Any, crs: str, res: int) -> list[int]: ...
def meeting_keys(
    table: Any,
    crs: str,
    res: int,
    margin: float,
    split: list[int] = ...,
    fine: Optional[int] = ...,
) -> tuple[list[int], list[int]]: ...
def max_extent(table: Any) -> float: ...
