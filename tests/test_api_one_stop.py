"""The one-stop side: the change feed and processing steps (status machine, event_id, concurrency)."""

from __future__ import annotations

import threading

import pytest

from .conftest import dossier_body, new_code


def read_feed(gw, after: int, limit: int = 500) -> dict:
    r = gw.get(f"/api/v1/one-stop/feed?after={after}&limit={limit}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def feed_tail(gw) -> int:
    cursor = 0
    while page := read_feed(gw, cursor)["items"]:
        cursor = int(page[-1]["cursor"])
    return cursor


def test_feed_is_ordered_and_rereadable(gw):
    start = feed_tail(gw)
    codes = [gw.file(dossier_body())["code"] for _ in range(5)]
    # Workers add their own items meanwhile (an SLA breach is announced within a scan): read pages of 3
    # to the end, and find the five filings among them, in filing order.
    pages, cursor = [], start
    while (page := read_feed(gw, cursor, limit=3))["items"]:
        pages.append(page)
        cursor = int(page["next_cursor"])
    items = [i for p in pages for i in p["items"]]
    assert [int(i["cursor"]) for i in items] == sorted(int(i["cursor"]) for i in items)
    created = [i for i in items if i["type"] == "dossier.created" and i["code"] in codes]
    assert [i["code"] for i in created] == codes
    assert created[0]["data"]["applicant"]["full_name"] == "Nguyễn Thị Hồng Nhung"
    again = read_feed(gw, start, limit=3)  # a client that lost its place reads the same items again
    assert again["items"] == pages[0]["items"]
    beyond = 10**12  # past the end: no items, and the cursor given back unchanged (nothing is skipped)
    empty = read_feed(gw, beyond)
    assert empty["items"] == [] and empty["next_cursor"] == str(beyond)


@pytest.mark.parametrize("query", ["after=-1", "after=abc", "limit=0", "limit=100000"])
def test_feed_bad_cursor_or_limit(gw, query):
    r = gw.get(f"/api/v1/one-stop/feed?{query}")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_query"


def test_feed_reader_never_misses_items_filed_concurrently(gw):
    """Writers commit in parallel while a reader follows the cursor: it must see every item once."""
    start = feed_tail(gw)
    filed: list[str] = []
    lock = threading.Lock()

    def writer() -> None:
        for _ in range(10):
            code = gw.file(dossier_body())["code"]
            with lock:
                filed.append(code)

    writers = [threading.Thread(target=writer) for _ in range(4)]
    for t in writers:
        t.start()
    seen: list[str] = []
    cursor = start
    while True:
        # Asked before the read: a writer that ends between an empty page and the question has committed an item
        # that page could not show (the test stopped there, one CI run in many, and missed it).
        writing = any(t.is_alive() for t in writers)
        page = read_feed(gw, cursor, limit=7)
        seen += [i["code"] for i in page["items"] if i["type"] == "dossier.created"]  # not the SLA breaches
        cursor = int(page["next_cursor"])
        if not page["items"] and not writing:
            break
    for t in writers:
        t.join()
    assert sorted(seen) == sorted(filed)
    assert len(seen) == len(set(seen)) == 40


def test_journey_and_history(gw):
    code = gw.file(dossier_body())["code"]
    gw.step(code, 2, officer="Trần Thị Bích", position="Chuyên viên", department="Bộ phận một cửa",
            due_at="2024-07-30T17:00:00+07:00", at="2024-07-25T10:00:00+07:00")
    gw.step(code, 4, note="Chuyển phòng Tư pháp")
    gw.step(code, 9)
    view = gw.get(f"/api/v1/dossiers/{code}").get_json()
    assert view["status"] == 9 and view["status_label"] == "Đã xử lý xong"
    assert view["due_at"] == "2024-07-30T17:00:00+07:00"
    assert [(h["seq"], h["from_status"], h["status"]) for h in view["history"]] == [(1, 1, 2), (2, 2, 4), (3, 4, 9)]
    assert view["history"][0]["officer"] == "Trần Thị Bích"
    assert view["history"][0]["at"] == "2024-07-25T10:00:00+07:00"


def test_illegal_step_is_409_naming_allowed(gw):
    code = gw.file(dossier_body())["code"]
    r = gw.post(f"/api/v1/dossiers/{code}/events", {"status": 10}, key="dev-one-stop-key")
    assert r.status_code == 409
    error = r.get_json()["error"]
    assert error["code"] == "conflict"
    assert error["details"] == {"current_status": 1, "allowed": [2, 3, 5, 6, 7]}
    assert gw.get(f"/api/v1/dossiers/{code}").get_json()["history"] == []
    assert len(gw.jobs(code)) == 1  # only the filing's job


def test_final_status_allows_nothing(gw):
    code = gw.file(dossier_body())["code"]
    gw.step(code, 3, note="Hồ sơ không hợp lệ")
    r = gw.post(f"/api/v1/dossiers/{code}/events", {"status": 2}, key="dev-one-stop-key")
    assert r.status_code == 409 and r.get_json()["error"]["details"]["allowed"] == []


def test_repeated_event_id_is_harmless(gw):
    code = gw.file(dossier_body())["code"]
    first = gw.step(code, 2, event_id="mc-123", at="2024-07-25T10:00:00+07:00")
    again = gw.post(f"/api/v1/dossiers/{code}/events", {"status": 2, "event_id": "mc-123",
                                                        "at": "2024-07-25T10:00:00+07:00"}, key="dev-one-stop-key")
    assert again.status_code == 200 and again.get_json() == first
    assert len(gw.get(f"/api/v1/dossiers/{code}").get_json()["history"]) == 1
    assert len(gw.jobs(code)) == 3  # filing + progress + record update; no second progress
    reused = gw.post(f"/api/v1/dossiers/{code}/events", {"status": 4, "event_id": "mc-123"}, key="dev-one-stop-key")
    assert reused.status_code == 409


@pytest.mark.parametrize("body", [{"status": 11}, {"status": "2"}, {"status": 2, "due_at": "soon"}, {}, {"status": 2,
                                                                                                       "x": 1}])
def test_bad_event_bodies(gw, body):
    code = gw.file(dossier_body())["code"]
    r = gw.post(f"/api/v1/dossiers/{code}/events", body, key="dev-one-stop-key")
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "validation_failed"


def test_event_for_unknown_dossier_is_404(gw):
    r = gw.post(f"/api/v1/dossiers/{new_code()}/events", {"status": 2}, key="dev-one-stop-key")
    assert r.status_code == 404


def test_concurrent_steps_on_one_dossier_are_serialised(gw):
    code = gw.file(dossier_body())["code"]
    gw.step(code, 2)
    results: list[int] = []

    def post(n: int) -> None:
        r = gw.post(f"/api/v1/dossiers/{code}/events", {"status": 4, "event_id": f"p-{n % 5}"},
                    key="dev-one-stop-key")
        results.append(r.status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = gw.get(f"/api/v1/dossiers/{code}").get_json()["history"]
    assert [h["seq"] for h in history] == list(range(1, 7))  # 2, then five distinct event ids
    assert sorted(results) == [200] * 5 + [201] * 5


def post_batch(gw, events):
    return gw.post("/api/v1/one-stop/events", {"events": events}, key="dev-one-stop-key")


def test_batch_of_steps_answers_each_and_keeps_order(gw):
    a, b = gw.file(dossier_body())["code"], gw.file(dossier_body())["code"]
    r = post_batch(gw, [
        {"code": a, "status": 2, "event_id": "a-1", "note": "Bước 1"},
        {"code": b, "status": 2, "note": "Bước 1"},
        {"code": a, "status": 4, "event_id": "a-2", "note": "Bước 2"},
        {"code": a, "status": 4, "event_id": "a-2", "note": "Bước 2"},  # the same step twice: harmless
        {"code": b, "status": 10},                                      # illegal after 2
        {"code": new_code(), "status": 2},                              # unknown dossier
        {"code": b, "status": 11},                                      # invalid
        {"status": 2},                                                  # no code
        {"code": b, "status": 4, "note": "Bước 2"},
    ])
    assert r.status_code == 200
    body = r.get_json()
    assert [x["status"] for x in body["results"]] == [201, 201, 201, 200, 409, 404, 422, 422, 201]
    assert body["accepted"] == 4
    assert body["results"][4]["error"]["details"] == {"current_status": 2, "allowed": [4, 5, 6, 7, 8, 9]}
    assert body["results"][6]["error"]["details"][0]["field"] == "status"
    for code in (a, b):
        history = gw.get(f"/api/v1/dossiers/{code}").get_json()["history"]
        assert [(h["seq"], h["status"]) for h in history] == [(1, 2), (2, 4)]
    gw.wait_jobs(a, "done", count=4)
    gw.wait_jobs(b, "done", count=4)
    for code in (a, b):
        progress = gw.portal.dossier(code)["progress"]
        assert [(p["TrangThai"], p["NoiDungXuLy"]) for p in progress] == [(2, "Bước 1"), (4, "Bước 2")]
    again = post_batch(gw, [{"code": a, "status": 2, "event_id": "a-1", "note": "Bước 1"}])
    assert again.get_json()["results"][0]["status"] == 200


@pytest.mark.parametrize("body,status", [({"events": "x"}, 422), ({"events": []}, 422), ({}, 422),
                                         ({"events": [{"code": "x", "status": 2}] * 501}, 422)])
def test_malformed_batches(gw, body, status):
    r = gw.post("/api/v1/one-stop/events", body, key="dev-one-stop-key")
    assert r.status_code == status and r.get_json()["error"]["code"] == "validation_failed"
    assert gw.post("/api/v1/one-stop/events", {"events": []}, key="dev-portal-key").status_code == 403
