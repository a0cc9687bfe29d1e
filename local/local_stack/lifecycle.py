"""The start/stop shape every long-running piece of the local stack shares."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self


class StartStop:
    """Mixin: ``with piece:`` starts it and stops it on the way out, even after an error.

    Subclasses define ``start()`` and ``stop()``; ``stop()`` must be safe to call on a piece
    that is stopped already.
    """

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
