"""Knob bounds (configs/bounds.yaml) and validated per-player updates."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from engine.policy.knobs import BOUNDS_PATH, KnobError, Knobs, load_bounds, load_knobs_file


@pytest.fixture
def bounds():
    return load_bounds()


def test_shipped_bounds_cover_every_knob(bounds):
    assert list(bounds.knobs) == [
        "alpha_action_smoothing", "lookahead_horizon", "risk_aversion", "emergency_brake_threshold",
        "gating_bias.rain", "gating_bias.drift", "gating_bias.straight",
    ]  # fmt: skip
    assert bounds.knobs["lookahead_horizon"].type is int and bounds.knobs["lookahead_horizon"].max == 30
    assert bounds.knobs["emergency_brake_threshold"].default == 1.0  # off
    assert bounds.invariants["min_throttle"] > 0
    for spec in bounds.knobs.values():
        assert spec.min <= spec.default <= spec.max and spec.meaning


def write_bounds(tmp_path, mutate):
    raw = yaml.safe_load(BOUNDS_PATH.read_text())
    mutate(raw)
    path = tmp_path / "bounds.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["knobs"]["risk_aversion"].update(colour=1), r"knobs.risk_aversion: unknown key 'colour'"),
        (lambda r: r["knobs"]["risk_aversion"].update(min="low"), r"knobs.risk_aversion.min must be a number"),
        (lambda r: r["knobs"]["lookahead_horizon"].update(max=3.5), r"knobs.lookahead_horizon.max must be an int"),
        (lambda r: r["knobs"]["risk_aversion"].update(min=2.0), r"knobs.risk_aversion: min 2.0 > max 1.0"),
        (lambda r: r["knobs"]["gating_bias"]["rain"].update(default=5.0), r"knobs.gating_bias.rain.default 5.0"),
        (lambda r: r["invariants"].update(min_throttle=-1), r"invariants.min_throttle = -1 is outside"),
        (lambda r: r["invariants"].update(turbo=1), r"invariants: unknown key 'turbo'"),
        (lambda r: r.update(extra={}), r"exactly the sections"),
    ],
)
def test_bad_bounds_files_name_file_and_key(tmp_path, mutate, message):
    path = write_bounds(tmp_path, mutate)
    with pytest.raises(KnobError, match=message) as err:
        load_bounds(path)
    assert str(path) in str(err.value)


def test_unparseable_and_missing_bounds(tmp_path):
    bad = tmp_path / "b.yaml"
    bad.write_text("knobs: [unclosed")
    with pytest.raises(KnobError, match="not valid YAML"):
        load_bounds(bad)
    with pytest.raises(KnobError, match="no such bounds file"):
        load_bounds(tmp_path / "nope.yaml")


def test_updates_are_validated_and_atomic(bounds):
    knobs = Knobs(bounds)
    knobs.update({"risk_aversion": 0.5, "gating_bias": {"rain": -1.5}})
    assert knobs.values["risk_aversion"] == 0.5 and knobs.values["gating_bias.rain"] == -1.5
    before = dict(knobs.values)
    for bad, message in [
        ({"risk_aversion": 0.7, "alpha_action_smoothing": 0.99}, r"alpha_action_smoothing = 0.99 is outside"),
        ({"lookahead_horizon": 2.5}, "whole number"),
        ({"risk_aversion": "high"}, "must be a number"),
        ({"risk_aversion": float("nan")}, "outside"),
        ({"nitro": 1}, "unknown knob 'nitro'"),
        ({"gating_bias": {"snow": 1}}, "unknown knob 'gating_bias.snow'"),
    ]:
        with pytest.raises(KnobError, match=message):
            knobs.update(bad)
        assert knobs.values == before  # nothing applied from a rejected update
    knobs.update({"lookahead_horizon": 12.0})
    assert knobs.values["lookahead_horizon"] == 12 and isinstance(knobs.values["lookahead_horizon"], int)
    assert knobs.nested()["gating_bias"]["rain"] == -1.5
    assert knobs.as_array().shape == (7,) and knobs.as_array().dtype == np.float64
    knobs.reset()
    assert knobs.values == bounds.defaults()


def test_knobs_file(tmp_path, bounds):
    good = tmp_path / "a.yaml"
    good.write_text("risk_aversion: 0.8\ngating_bias:\n  straight: 1.0\n")
    knobs = load_knobs_file(good, bounds)
    assert knobs.values["risk_aversion"] == 0.8 and knobs.values["gating_bias.straight"] == 1.0
    bad = tmp_path / "b.yaml"
    bad.write_text("risk_aversion: 3\n")
    with pytest.raises(KnobError, match=r"b.yaml: risk_aversion = 3 is outside \[0.0, 1.0\]"):
        load_knobs_file(bad, bounds)
    notmap = tmp_path / "c.yaml"
    notmap.write_text("- 1\n- 2\n")
    with pytest.raises(KnobError, match="c.yaml: expected a mapping"):
        load_knobs_file(notmap, bounds)
