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
    attribute_names : tuple[str, ...]
        Every ``name:value`` attribute pair of the catalogue (see
        :func:`recsys.catalog.attribute_pair`).
    attribute_indptr, attribute_indices : NDArray[np.int32]
        CSR rows of the attribute pairs of each item, laid out like the categories.
    """

    manifest: Manifest
    item_ids: tuple[str, ...]
    item_factors: NDArray[np.float32]
    popularity: NDArray[np.float32]
    available: NDArray[np.bool_]
    category_names: tuple[str, ...]
    category_indptr: NDArray[np.int32]
    category_indices: NDArray[np.int32]
    attribute_names: tuple[str, ...] = ()
    attribute_indptr: NDArray[np.int32] | None = None
    attribute_indices: NDArray[np.int32] | None = None
    _category_masks: dict[str, NDArray[np.bool_]] = field(default_factory=dict, repr=False)
    _attribute_masks: dict[str, NDArray[np.bool_]] = field(default_factory=dict, repr=False)

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

    @cached_property
    def item_norms(self) -> NDArray[np.float32]:
        """``|y_i|`` of every item, shape (n_items,), for cosine similarity.

        Only the norms are kept, not a normalized copy of ``Y``: that would double the
        model's memory in every container.
        """
        return np.linalg.norm(self.item_factors, axis=1).astype(np.float32)

    def category_mask(self, category: str) -> NDArray[np.bool_]:
        """Boolean mask of the items in ``category``; all False for an unknown one."""
        return self._name_mask(
            category,
            self._category_codes,
            self._category_masks,
            self.category_indptr,
            self.category_indices,
        )

    def categories_of(self, row: int) -> tuple[str, ...]:
        start, end = self.category_indptr[row], self.category_indptr[row + 1]
        return tuple(self.category_names[c] for c in self.category_indices[start:end])

    def attribute_mask(self, pair: str) -> NDArray[np.bool_]:
        """Boolean mask of the items that have the attribute ``name:value``."""
        if self.attribute_indptr is None or self.attribute_indices is None:
            return np.zeros(self.n_items, dtype=np.bool_)
        return self._name_mask(
            pair,
            self._attribute_codes,
            self._attribute_masks,
            self.attribute_indptr,
            self.attribute_indices,
        )

    def attributes_of(self, row: int) -> tuple[str, ...]:
        """The ``name:value`` attribute pairs of the item in ``row``."""
        if self.attribute_indptr is None or self.attribute_indices is None:
            return ()
        start, end = self.attribute_indptr[row], self.attribute_indptr[row + 1]
        return tuple(self.attribute_names[a] for a in self.attribute_indices[start:end])

    @cached_property
    def _category_codes(self) -> dict[str, int]:
        return {name: code for code, name in enumerate(self.category_names)}

    @cached_property
    def _attribute_codes(self) -> dict[str, int]:
        return {name: code for code, name in enumerate(self.attribute_names)}

    def _name_mask(
        self,
        name: str,
        codes: dict[str, int],
        cache: dict[str, NDArray[np.bool_]],
        indptr: NDArray[np.int32],
        indices: NDArray[np.int32],
    ) -> NDArray[np.bool_]:
        # Only names the model knows are cached: callers choose the names, and caching every
        # unknown one would let requests grow the container's memory without bound.
        code = codes.get(name)
        if code is None:
            return np.zeros(self.n_items, dtype=np.bool_)
        mask = cache.get(name)
        if mask is None:
            mask = np.zeros(self.n_items, dtype=np.bool_)
            rows = np.repeat(np.arange(self.n_items), np.diff(indptr))
            mask[rows[indices == code]] = True
            cache[name] = mask
        return mask


def _csr(
    rows: list[tuple[str, ...]],
) -> tuple[tuple[str, ...], NDArray[np.int32], NDArray[np.int32]]:
    """Names, indptr and indices of a list of per-item name tuples."""
    names = tuple(sorted({name for row in rows for name in row}))
    code_of = {name: code for code, name in enumerate(names)}
    lengths = [len(row) for row in rows]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    indices = np.array([code_of[name] for row in rows for name in row], dtype=np.int32)
    return names, indptr, indices


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
    item_attributes: list[tuple[str, ...]] | None = None,
) -> tuple[ItemModel, bytes]:
    """Assemble a model and its payload; the manifest's sha256 is that of the payload.

    Without an explicit ``version`` one is derived from ``created_at`` and the payload hash,
    so versions sort by time and two different payloads never share one.

    ``item_attributes`` holds each item's ``name:value`` attribute pairs; without it no item
    has attributes.

    Returns
    -------
    tuple[ItemModel, bytes]
        The validated model and the npz bytes to publish beside ``model.manifest``.
    """
    category_names, indptr, indices = _csr(item_categories)
    attribute_names, attribute_indptr, attribute_indices = _csr(
        item_attributes if item_attributes is not None else [()] * len(item_ids)
    )

    arrays = {
        "item_ids": np.array(item_ids, dtype=np.str_),
        "item_factors": np.ascontiguousarray(item_factors, dtype=np.float32),
        "popularity": np.asarray(popularity, dtype=np.float32),
        "available": np.asarray(available, dtype=np.bool_),
        "category_names": np.array(category_names, dtype=np.str_).reshape(-1),
        "category_indptr": indptr,
        "category_indices": indices,
        "attribute_names": np.array(attribute_names, dtype=np.str_).reshape(-1),
        "attribute_indptr": attribute_indptr,
        "attribute_indices": attribute_indices,
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
    has_attributes = "attribute_names" in arrays
    return ItemModel(
        manifest=manifest,
        item_ids=tuple(str(i) for i in arrays["item_ids"]),
        item_factors=np.ascontiguousarray(arrays["item_factors"]),
        popularity=arrays["popularity"],
        available=arrays["available"],
        category_names=tuple(str(c) for c in arrays["category_names"]),
        category_indptr=arrays["category_indptr"],
        category_indices=arrays["category_indices"],
        attribute_names=(
            tuple(str(a) for a in arrays["attribute_names"]) if has_attributes else ()
        ),
        attribute_indptr=arrays["attribute_indptr"] if has_attributes else None,
        attribute_indices=arrays["attribute_indices"] if has_attributes else None,
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

    _check_csr(arrays, "category", n_items)
    _check_attribute_arrays(arrays, n_items)


def _check_attribute_arrays(arrays: dict[str, NDArray[Any]], n_items: int) -> None:
    # Payloads written before attributes existed have none of the three arrays; such a model
    # loads with no attributes. One that has some of them but not all is corrupt.
    names = ("attribute_names", "attribute_indptr", "attribute_indices")
    present = [name for name in names if name in arrays]
    if not present:
        return
    if len(present) != len(names):
        raise ModelIntegrityError(f"payload has {present} but not all of {list(names)}")
    for name, kind in zip(names, ("U", "i", "i"), strict=True):
        if arrays[name].dtype.kind != kind:
            raise ModelIntegrityError(f"{name} has dtype {arrays[name].dtype}, expected {kind}")
    _check_csr(arrays, "attribute", n_items)


def _check_csr(arrays: dict[str, NDArray[Any]], prefix: str, n_items: int) -> None:
    indptr, indices = arrays[f"{prefix}_indptr"], arrays[f"{prefix}_indices"]
    n_names = arrays[f"{prefix}_names"].shape[0]
    if indptr.shape != (n_items + 1,) or indptr[0] != 0 or indptr[-1] != indices.shape[0]:
        raise ModelIntegrityError(f"{prefix}_indptr does not describe {prefix}_indices")
    if np.any(np.diff(indptr) < 0) or (
        indices.size and not 0 <= indices.min() <= indices.max() < n_names
    ):
        raise ModelIntegrityError(f"{prefix}_indices point outside {prefix}_names")
