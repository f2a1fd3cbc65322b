"""The training loop keeps its records: three short fixed-seed digits runs give the records
saved from the loop before it was shared with the ensembles (tests/fixtures), and an
ensemble member gives the records of its seed trained alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from normscale.train import TrainConfig, train
from normscale.train.ensemble import train_ensemble

pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "train_records.json").read_text())


def rows(result) -> list[dict]:
    return [{k: v for k, v in r.to_row().items() if k != "wall_time"} for r in result.records]


def assert_same_rows(got: list[dict], want: list[dict], *, rel: float = 1e-6) -> None:
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for a, b in zip(got, want, strict=True):
        assert a.keys() == b.keys()
        assert (a["epoch"], a["test_error"], a["train_error"]) == \
               (b["epoch"], b["test_error"], b["train_error"])
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=rel, abs=1e-12), key


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_a_run_gives_the_records_saved_before_the_loop_was_shared(name):
    want = FIXTURE[name]
    result = train(TrainConfig(**want["config"]))
    assert (result.status, result.error, result.stop_reason, result.step) == \
           (want["status"], want["error"], want["stop_reason"], want["step"])
    assert_same_rows(rows(result), want["records"])


def test_an_ensemble_member_logs_at_its_own_points_as_when_alone():
    """Norm-growth logging per member: each member logs the steps its lone run logs, no
    more (the members grow at different rates, so a shared schedule would differ)."""
    base = FIXTURE["optimum"]["config"]
    configs = [TrainConfig(**{**base, "seed": s}) for s in (3, 4)]
    result = train_ensemble(configs)
    alone = [train(c) for c in configs]
    steps = [[r.step for r in m.records] for m in result.members]
    assert steps[0] != steps[1]  # the members did log at different points
    for member, lone in zip(result.members, alone, strict=True):
        assert (member.status, member.stop_reason, member.step) == \
               (lone.status, lone.stop_reason, lone.step)
        # float32 batched kernels sum in another order: the same points, values to 1e-4
        assert [r.step for r in member.records] == [r.step for r in lone.records]
        for a, b in zip(member.records, lone.records, strict=True):
            assert a.test_error == pytest.approx(b.test_error, abs=2e-3)
            assert a.test_loss == pytest.approx(b.test_loss, rel=1e-4)
