"""The item model: what the nightly job publishes and every function loads.

An artifact is an ``.npz`` payload (numpy arrays only, loaded without pickle, so serving needs
neither ``implicit`` nor ``scipy``) plus a JSON manifest that carries the sha256 of the
payload. :func:`load_model` trusts nothing: it checks the hash, the dtypes, the shapes and
that every factor is finite before a model can serve.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys.config import ModelConfig
from recsys.errors import ModelIntegrityError

ARTIFACT_FORMAT = "recsys-item-model/1"


class Manifest(BaseModel):
    """Describes one published model; stored beside the payload as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = Field(default=ARTIFACT_FORMAT, description="Artifact layout version.")
    version: str = Field(description="Unique, sortable model version.")
    created_at: str = Field(description="ISO 8601 UTC time the model was built.")
    parameters: ModelConfig = Field(description="Weights and ALS settings it was built with.")
    counts: dict[str, int] = Field(description="Users, items, events, non-zeros.")
    sha256: str = Field(description="sha256 of the npz payload, hex.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Offline metrics.")
    n_items: int = Field(ge=1)
    factors: int = Field(ge=1)


@dataclass(frozen=True, eq=False)
class ItemModel:
    """Item factors with the metadata that serving and fold-in need.

    Attributes
    ----------
    manifest : Manifest
    item_ids : tuple[str, ...]
        Row ``i`` of every array belongs to ``item_ids[i]``.
    item_factors : NDArray[np.float32], shape (n_items, k)
        ``Y``, C-contiguous.
    popularity : NDArray[np.float32], shape (n_items,)
        Decayed popularity, scaled to a maximum of 1.
    available : NDArray[np.bool_], shape (n_items,)
        False hides the item from every list.
    category_names : tuple[str, ...]
    category_indptr, category_indices : NDArray[np.int32]
        CSR rows: the categories of item ``i`` are
        ``category_indices[category_indptr[i]:category_indptr[i + 1]]``.
    """

    manifest: Manifest
    item_ids: tuple[str, ...]
    item_factors: NDArray[np.float32]
    popularity: NDArray[np.float32]
    available: NDArray[np.bool_]
    category_names: tuple[str, ...]
    category_indptr: NDArray[np.int32]
    category_indices: NDArray[np.int32]
    _category_masks: dict[str, NDArray[np.bool_]] = field(default_factory=dict, repr=False)

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def config(self) -> ModelConfig:
        return self.manifest.parameters

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @cached_property
    def item_index(self) -> dict[str, int]:
        """Row of each item id."""
        return {item_id: row for row, item_id in enumerate(self.item_ids)}

    @cached_property
    def YtY(self) -> NDArray[np.float64]:
        """Gram matrix of the item factors, shared by every fold-in against this model.

        Cached per model object: a new model is a new object, so the cache can never outlive
        the factors it was computed from.
        """
        Y = self.item_factors.astype(np.float64)
        return Y.T @ Y

    def category_mask(self, category: str) -> NDArray[np.bool_]:
        """Boolean mask of the items in ``category``; all False for an unknown one."""
        mask = self._category_masks.get(category)
        if mask is None:
            mask = np.zeros(self.n_items, dtype=np.bool_)
            if category in self.category_names:
                code = self.category_names.index(category)
                rows = np.repeat(np.arange(self.n_items), np.diff(self.category_indptr))
                mask[rows[self.category_indices == code]] = True
            self._category_masks[category] = mask
        return mask

    def categories_of(self, row: int) -> tuple[str, ...]:
        start, end = self.category_indptr[row], self.category_indptr[row + 1]
        return tuple(self.category_names[c] for c in self.category_indices[start:end])


def build_model(
    *,
    version: str | None,
    created_at: datetime,
    parameters: ModelConfig,
    counts: dict[str, int],
    item_ids: tuple[str, ...],
    item_factors: NDArray[np.float32],
    popularity: NDArray[np.float32],
    available: NDArray[np.bool_],
    item_categories: list[tuple[str, ...]],
    metrics: dict[str, float] | None = None,
) -> tuple[ItemModel, bytes]:
    """Assemble a model and its payload; the manifest's sha256 is that of the payload.

    Without an explicit ``version`` one is derived from ``created_at`` and the payload hash,
    so versions sort by time and two different payloads never share one.

    Returns
    -------
    tuple[ItemModel, bytes]
        The validated model and the npz bytes to publish beside ``model.manifest``.
    """
    category_names = tuple(sorted({c for cats in item_categories for c in cats}))
    code_of = {name: code for code, name in enumerate(category_names)}
    lengths = [len(cats) for cats in item_categories]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    indices = np.array([code_of[c] for cats in item_categories for c in cats], dtype=np.int32)

    arrays = {
        "item_ids": np.array(item_ids, dtype=np.str_),
        "item_factors": np.ascontiguousarray(item_factors, dtype=np.float32),
        "popularity": np.asarray(popularity, dtype=np.float32),
        "available": np.asarray(available, dtype=np.bool_),
        "category_names": np.array(category_names, dtype=np.str_).reshape(-1),
        "category_indptr": indptr,
        "category_indices": indices,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    payload = buffer.getvalue()

    sha256 = hashlib.sha256(payload).hexdigest()
    manifest = Manifest(
        version=version or f"{created_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{sha256[:8]}",
        created_at=created_at.astimezone(UTC).isoformat(),
        parameters=parameters,
        counts=counts,
        sha256=sha256,
        metrics=metrics or {},
        n_items=len(item_ids),
        factors=int(item_factors.shape[1]),
    )
    return load_model(payload, manifest), payload


def parse_manifest(raw: bytes | str | dict[str, Any]) -> Manifest:
    """Validate a manifest from JSON; raises :class:`ModelIntegrityError` when malformed."""
    try:
        data = raw if isinstance(raw, dict) else json.loads(raw)
        return Manifest.model_validate(data)
    except (ValueError, ValidationError) as error:
        raise ModelIntegrityError(f"manifest is invalid: {error}") from None


def load_model(payload: bytes, manifest: Manifest) -> ItemModel:
    """Turn a published payload into a model, refusing anything inconsistent.

    Raises
    ------
    ModelIntegrityError
        On a sha256 mismatch, an unreadable payload, a missing array, wrong dtypes or
        shapes, dimensions that disagree with the manifest, or non-finite factors.
    """
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest.sha256:
        raise ModelIntegrityError(
            f"payload sha256 {digest[:12]}... does not match manifest {manifest.sha256[:12]}..."
        )

    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError) as error:
        raise ModelIntegrityError(f"payload is not a readable npz: {error}") from None

    _check_arrays(arrays, manifest)
    return ItemModel(
        manifest=manifest,
        item_ids=tuple(str(i) for i in arrays["item_ids"]),
        item_factors=np.ascontiguousarray(arrays["item_factors"]),
        popularity=arrays["popularity"],
        available=arrays["available"],
        category_names=tuple(str(c) for c in arrays["category_names"]),
        category_indptr=arrays["category_indptr"],
        category_indices=arrays["category_indices"],
    )


def _check_arrays(arrays: dict[str, NDArray[Any]], manifest: Manifest) -> None:
    expected = {
        "item_ids": "U",
        "item_factors": "f",
        "popularity": "f",
        "available": "b",
        "category_names": "U",
        "category_indptr": "i",
        "category_indices": "i",
    }
    for name, kind in expected.items():
        if name not in arrays:
            raise ModelIntegrityError(f"payload has no array {name!r}")
        if arrays[name].dtype.kind != kind:
            raise ModelIntegrityError(f"{name} has dtype {arrays[name].dtype}, expected {kind}")

    factors = arrays["item_factors"]
    n_items, k = manifest.n_items, manifest.factors
    if factors.dtype != np.float32 or factors.shape != (n_items, k):
        raise ModelIntegrityError(
            f"item_factors is {factors.dtype}{factors.shape}, manifest says float32({n_items}, {k})"
        )
    for name in ("item_ids", "popularity", "available"):
        if arrays[name].shape != (n_items,):
            raise ModelIntegrityError(
                f"{name} has shape {arrays[name].shape}, expected ({n_items},)"
            )
    if len(set(arrays["item_ids"].tolist())) != n_items:
        raise ModelIntegrityError("item_ids are not unique")

    if not np.isfinite(factors).all():
        bad_rows = int((~np.isfinite(factors)).any(axis=1).sum())
        raise ModelIntegrityError(f"item_factors has NaN or inf in {bad_rows} rows")
    if not np.isfinite(arrays["popularity"]).all():
        raise ModelIntegrityError("popularity has NaN or inf")

    indptr, indices = arrays["category_indptr"], arrays["category_indices"]
    n_categories = arrays["category_names"].shape[0]
    if indptr.shape != (n_items + 1,) or indptr[0] != 0 or indptr[-1] != indices.shape[0]:
        raise ModelIntegrityError("category_indptr does not describe category_indices")
    if np.any(np.diff(indptr) < 0) or (
        indices.size and not 0 <= indices.min() <= indices.max() < n_categories
    ):
        raise ModelIntegrityError("category_indices point outside category_names")
