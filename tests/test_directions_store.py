"""RUN/directions/<name>.json: round trip, unit norm, names and damaged files."""

from __future__ import annotations

import numpy as np
import pytest

from ganscope.config import RunConfig
from ganscope.directions.store import (
    Direction,
    list_directions,
    load_direction,
    save_direction,
)
from ganscope.errors import RunError, UserError
from ganscope.training.run import Run


@pytest.fixture
def run(tmp_path):
    return Run.create(RunConfig().validate(), tmp_path / "runs", "r")


def test_round_trip_is_unit_norm_and_listed(run):
    v = np.arange(1, 101, dtype=float)
    p = save_direction(run, Direction("male", "interfacegan", v, attribute="Male",
                                      details={"accuracy": 0.93}))
    assert p == run.path / "directions" / "male.json"
    d = load_direction(run, "male")
    assert d.method == "interfacegan" and d.attribute == "Male" and d.z_dim == 100
    assert np.linalg.norm(d.vector) == pytest.approx(1.0)
    assert np.allclose(d.vector, v / np.linalg.norm(v))
    assert d.details == {"accuracy": 0.93}
    save_direction(run, Direction("sefa-0", "sefa", -v))
    assert [x.name for x in list_directions(run)] == ["male", "sefa-0"]


def test_bad_name_zero_vector_unknown_and_corrupt(run):
    with pytest.raises(UserError, match="bad direction name 'Male Up'"):
        save_direction(run, Direction("Male Up", "mean", np.ones(100)))
    with pytest.raises(UserError, match="zero or non-finite vector"):
        save_direction(run, Direction("zero", "mean", np.zeros(100)))
    with pytest.raises(RunError, match=r"run 'r' has no direction 'smile' \(has: none\)"):
        load_direction(run, "smile")
    (run.path / "directions").mkdir()
    (run.path / "directions" / "broken.json").write_text("{not json")
    with pytest.raises(RunError, match="broken.json is not readable JSON"):
        load_direction(run, "broken")
    (run.path / "directions" / "short.json").write_text(
        '{"format": "ganscope-direction-v1", "name": "short", "method": "mean", '
        '"z_dim": 100, "vector": [1, 2]}')
    with pytest.raises(RunError, match="short.json is not a ganscope direction"):
        load_direction(run, "short")
    assert list_directions(run) == []  # damaged files are skipped by the listing
