def test_healthz_touches_nothing(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_when_both_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["redis"] == "ok" and response.json["database"] == "ok"
