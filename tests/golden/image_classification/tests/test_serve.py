"""The web service (the [serve] extra), through FastAPI's test client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
pytest.importorskip("multipart", reason="the [serve] extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from shapes_demo import load, serve  # noqa: E402

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(serve.create_app())


def test_health_and_metadata(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    metadata = client.get("/metadata").json()
    assert metadata["labels"] == EXPECTED["labels"]
    assert metadata["sha256"] == load().info.sha256


def test_predict_one_and_several_files(client: TestClient) -> None:
    items = EXPECTED["images"][:2]
    files = [("file", (str(i["path"]), (DATA / str(i["path"])).read_bytes())) for i in items]
    one = client.post("/predict", files=files[:1])
    assert one.status_code == 200, one.text
    assert one.json()["predictions"][0]["score"] == pytest.approx(items[0]["score"], abs=1e-3)
    both = client.post("/predict", files=files, params={"min_score": 1.0})
    assert both.status_code == 200
    assert [p["file"] for p in both.json()["predictions"]] == [i["path"] for i in items]


def test_bad_requests_get_clear_4xx(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = client.post("/predict", files=[("file", ("notes.jpg", b"not an image"))])
    assert bad.status_code == 400 and "notes.jpg" in bad.json()["detail"]
    assert client.post("/predict").status_code == 422
    monkeypatch.setattr(serve, "MAX_FILE_BYTES", 10)
    big = client.post("/predict", files=[("file", ("big.png", b"x" * 11))])
    assert big.status_code == 413
    wrong = client.post("/predict", params={"min_score": 2}, files=[("file", ("a", b"x"))])
    assert wrong.status_code == 422
