"""ProductionApprovalOperator without an Airflow scheduler: its fixed choices and timeout default, and
the immediate pass of an image whose manifest asks for no approval (tests/e2e/test_approval.py answers
a real request through the api-server)."""

from __future__ import annotations

from pathlib import Path

from patchpipe.airflow.operators.approval import ProductionApprovalOperator

ROOT = Path(__file__).resolve().parents[2]
CANDIDATE = {"candidate": "127.0.0.1:5000/demo/web:1.0-patch.20261129.1"}


def operator() -> ProductionApprovalOperator:
    return ProductionApprovalOperator(task_id="approve_production", image="demo-web", candidate=CANDIDATE,
                                      fleet_path=str(ROOT / "include" / "fleet.yaml"))


def test_no_answer_means_reject() -> None:
    approval = operator()
    assert approval.options == ["Approve", "Reject"]
    assert approval.defaults == ["Reject"]


def test_an_image_without_approval_in_its_manifest_passes_at_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATCHPIPE_DB", f"sqlite:///{tmp_path}/patchpipe.db")
    approval = operator()
    assert approval.execute({"run_id": "manual__1"}) == {"approved": True, "required": False}
    assert approval.response_timeout is None  # it never asked
