"""Model artifacts: round trip, and refusal of anything corrupt."""

import io

import numpy as np
import pytest

from recsys.errors import ModelIntegrityError
from recsys.model import load_model, parse_manifest
from tests.factories import make_model


def _model_with_payload():
    factors = np.arange(12, dtype=np.float32).reshape(4, 3)
    return make_model(factors, categories=[("a",), ("a", "b"), (), ("b",)])


def _repacked(payload: bytes, **changes) -> bytes:
    with np.load(io.BytesIO(payload)) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays.update(changes)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _with_hash(manifest, payload: bytes, **changes):
    import hashlib

    return manifest.model_copy(update={"sha256": hashlib.sha256(payload).hexdigest(), **changes})


def test_payload_and_manifest_round_trip_to_the_same_model():
    model, payload = _model_with_payload()
    manifest = parse_manifest(model.manifest.model_dump_json())
    loaded = load_model(payload, manifest)
    np.testing.assert_array_equal(loaded.item_factors, model.item_factors)
    assert loaded.item_ids == ("i0", "i1", "i2", "i3")
    assert loaded.categories_of(1) == ("a", "b")
    assert loaded.category_mask("b").tolist() == [False, True, False, True]


def test_sha256_mismatch_is_refused():
    model, payload = _model_with_payload()
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model(payload[:-1] + bytes([payload[-1] ^ 0xFF]), model.manifest)


def test_nan_in_factors_is_refused():
    model, payload = _model_with_payload()
    factors = model.item_factors.copy()
    factors[2, 1] = np.nan
    bad = _repacked(payload, item_factors=factors)
    with pytest.raises(ModelIntegrityError, match="NaN or inf in 1 rows"):
        load_model(bad, _with_hash(model.manifest, bad))


def test_inf_in_factors_is_refused():
    model, payload = _model_with_payload()
    factors = model.item_factors.copy()
    factors[0, 0] = np.inf
    bad = _repacked(payload, item_factors=factors)
    with pytest.raises(ModelIntegrityError, match="NaN or inf"):
        load_model(bad, _with_hash(model.manifest, bad))


def test_dimensions_disagreeing_with_the_manifest_are_refused():
    model, payload = _model_with_payload()
    with pytest.raises(ModelIntegrityError, match="item_factors"):
        load_model(payload, model.manifest.model_copy(update={"factors": 5}))


def test_float64_factors_are_refused():
    model, payload = _model_with_payload()
    bad = _repacked(payload, item_factors=model.item_factors.astype(np.float64))
    with pytest.raises(ModelIntegrityError, match="float32"):
        load_model(bad, _with_hash(model.manifest, bad))


def test_missing_array_is_refused():
    model, payload = _model_with_payload()
    with np.load(io.BytesIO(payload)) as npz:
        arrays = {name: npz[name] for name in npz.files if name != "popularity"}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    bad = buffer.getvalue()
    with pytest.raises(ModelIntegrityError, match="popularity"):
        load_model(bad, _with_hash(model.manifest, bad))


def test_bytes_that_are_not_an_npz_are_refused():
    model, _ = _model_with_payload()
    junk = b"not a zip file at all"
    with pytest.raises(ModelIntegrityError, match="npz"):
        load_model(junk, _with_hash(model.manifest, junk))


def test_malformed_manifest_is_refused():
    with pytest.raises(ModelIntegrityError, match="manifest"):
        parse_manifest(b'{"version": 3}')


def test_attributes_round_trip_and_answer_masks():
    # GIVEN a model whose items carry attribute pairs
    factors = np.ones((3, 2), dtype=np.float32)
    attributes = [("brand:acme", "size:big"), (), ("brand:acme",)]
    model, payload = make_model(factors, attributes=attributes)

    # WHEN its payload is loaded again
    loaded = load_model(payload, model.manifest)

    # THEN every item has its pairs, and a pair's mask marks its items
    assert [loaded.attributes_of(row) for row in range(3)] == attributes
    assert loaded.attribute_mask("brand:acme").tolist() == [True, False, True]
    assert loaded.attribute_mask("brand:none").tolist() == [False, False, False]


def test_payload_written_before_attributes_existed_still_loads():
    # GIVEN a payload without the three attribute arrays, as older trainers wrote it
    model, payload = _model_with_payload()
    older = _without(payload, "attribute_names", "attribute_indptr", "attribute_indices")

    # WHEN it is loaded under a manifest of its own hash
    loaded = load_model(older, _with_hash(model.manifest, older))

    # THEN it serves with no attributes
    assert loaded.attributes_of(0) == ()
    assert not loaded.attribute_mask("brand:acme").any()


def test_payload_with_some_attribute_arrays_but_not_all_is_refused():
    # GIVEN a payload that lost one of its attribute arrays
    model, payload = _model_with_payload()
    damaged = _without(payload, "attribute_indices")

    # WHEN it is loaded
    # THEN it is refused as corrupt
    with pytest.raises(ModelIntegrityError, match="attribute"):
        load_model(damaged, _with_hash(model.manifest, damaged))


def test_attribute_indices_pointing_outside_the_names_are_refused():
    # GIVEN a payload whose attribute index names a pair that does not exist
    model, payload = make_model(np.ones((2, 2), dtype=np.float32), attributes=[("a:b",), ()])
    damaged = _repacked(payload, attribute_indices=np.array([7], dtype=np.int32))

    # WHEN it is loaded
    # THEN it is refused
    with pytest.raises(ModelIntegrityError, match="attribute_indices"):
        load_model(damaged, _with_hash(model.manifest, damaged))


def _without(payload: bytes, *names: str) -> bytes:
    with np.load(io.BytesIO(payload)) as npz:
        arrays = {name: npz[name] for name in npz.files if name not in names}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
