from collections.abc import Iterator
from typing import Any

def _iterdump(connection: Any, filter: str | None = None) -> Iterator[str]: ...
