import threading

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_reports_each_dependency(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"] == "ok"
    assert body["checks"]["broker"] in {"ok", "eager"}


def test_healthz_answers_503_in_time_while_a_dependency_hangs(client, monkeypatch):
    """While Redis was down /healthz took 2 s to answer: a probe gives up before that."""
    hung = threading.Event()
    monkeypatch.setattr("apps.core.api._check_broker", lambda: hung.wait(30) and "ok")
    try:
        response = client.get("/healthz")  # returns while the broker check still hangs
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["broker"] == "error: timeout"
        assert checks["database"] == "ok" and checks["cache"] == "ok"
    finally:
        hung.set()


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 32


def test_an_unsafe_incoming_request_id_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="<script>")
    assert response["X-Request-ID"] != "<script>"


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "FinAegis API"
    assert client.get("/api/docs/").status_code == 200


def test_api_root_requires_authentication_with_the_error_body(client):
    response = client.get("/api/v1/")
    assert response.status_code in (401, 403)
    assert response.json()["error"] in {"NOT_AUTHENTICATED", "PERMISSION_DENIED"}


def test_admin_login_page_is_served(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"email" in response.content.lower()
