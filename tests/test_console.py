"""The operators' console at /ops/: signing in, what it shows, its forms' protection, and, in headless
Chromium against a real `gateway serve` and worker, the operator's errand: log in, see a dead letter,
retry it, see it delivered."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from sqlalchemy import update

from gateway.store.tables import jobs

from .conftest import REQUIRE, dossier_body, wait_for

OPS = {"Authorization": "Bearer dev-ops-key"}
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def sign_in(client, key: str = "dev-ops-key"):  # noqa: ANN001, ANN201
    return client.post("/ops/login", data={"key": key})


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def test_the_console_needs_an_ops_key(gw):
    client = gw.app.test_client()
    assert client.get("/ops/").headers["Location"].endswith("/ops/login")
    assert sign_in(client, "dev-one-stop-key").status_code == 401
    assert sign_in(client, "nonsense").status_code == 401
    assert client.get("/ops/").status_code == 302
    r = sign_in(client)
    assert r.status_code == 302 and "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=Strict" in r.headers[
        "Set-Cookie"]
    page = client.get("/ops/").get_data(as_text=True)
    for section in ("queues", "health", "dead-letters", "sla", "trust"):
        assert f'id="{section}"' in page
    assert "Test Vietnam National Root CA" in page  # the trust roots, with their fingerprints


def test_the_chart_draws_the_last_hours_dead_letters(gw):
    _dead_letter(gw)
    client = gw.app.test_client()
    sign_in(client)

    def drawn() -> str | None:
        page = client.get("/ops/").get_data(as_text=True)
        return page if 'class="dead"' in page else None

    page = wait_for(drawn, 30, what="a sample with the dead letter, drawn")
    svg = page[page.index('<svg id="queue-chart"'):page.index("</svg>")]
    assert "<script" not in svg and "Thư chết" in svg and "Đang chờ" in svg


def test_a_revoked_key_ends_its_console_session(gw):
    key = gw.client.post("/ops/api-keys", json={"name": f"op-{os.getpid()}-{id(gw)}", "roles": ["ops"]},
                         headers=OPS).get_json()
    client = gw.app.test_client()
    assert sign_in(client, key["key"]).status_code == 302
    assert client.get("/ops/").status_code == 200
    gw.client.delete(f"/ops/api-keys/{key['name']}", headers=OPS)
    assert client.get("/ops/").headers["Location"].endswith("/ops/login")


def _dead_letter(gw) -> tuple[str, dict]:
    # The portal refuses this dossier's data (error_code 2): a failure of the job's own, so a dead letter at
    # once. (Failing every call would look like the portal being down, which costs no attempts.)
    gw.portal.faults("error_code", 1000, code="2")
    code = gw.file(dossier_body())["code"]
    dead = wait_for(lambda: [j for j in gw.jobs(code) if j["state"] == "dead"], 60, what="a dead letter")[0]
    gw.portal.clear_faults()
    return code, dead


def test_forms_without_the_session_token_are_refused_and_errors_are_escaped(gw):
    code, dead = _dead_letter(gw)
    with gw.gateway.engine.begin() as conn:  # an error text from a partner is shown as text, never run
        conn.execute(update(jobs).where(jobs.c.id == dead["id"]).values(last_error="<script>alert(1)</script>"))
    client = gw.app.test_client()
    sign_in(client)
    page = client.get("/ops/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    forged = client.post(f"/ops/console/dead-letters/{dead['id']}/retry", data={"csrf": "guess"})
    assert (forged.status_code, forged.get_json()["error"]["code"]) == (403, "bad_form_token")
    assert next(j for j in gw.jobs(code) if j["id"] == dead["id"])["state"] == "dead"
    r = client.post(f"/ops/console/dead-letters/{dead['id']}/discard", data={"csrf": csrf(page)})
    assert r.status_code == 302
    assert next(j for j in gw.jobs(code) if j["id"] == dead["id"])["state"] == "discarded"


def test_all_dead_letters_of_a_kind_are_retried_at_once(gw):
    codes = [_dead_letter(gw)[0] for _ in range(2)]
    client = gw.app.test_client()
    sign_in(client)
    page = client.get("/ops/").get_data(as_text=True)
    r = client.post("/ops/console/dead-letters/retry-kind", data={
        "csrf": csrf(page), "queue": "national_portal", "kind": "national_portal.sync_dossier"})
    assert r.status_code == 302
    assert "đã gửi lại" in client.get("/ops/").get_data(as_text=True)
    for code in codes:
        gw.wait_jobs(code)
        assert gw.portal.dossier(code) is not None


def _finished(gw) -> str:
    code = gw.file(dossier_body())["code"]  # its attachment is a link: the package needs only the TSA
    gw.step(code, 2)
    gw.step(code, 8, note="Dừng xử lý")  # stopped: a final status, so its archive package is due
    return code


def test_the_archive_page_shows_packages_waiting_with_their_error_and_sealed(gw):
    def state(code: str) -> str | None:
        return (gw.get(f"/api/v1/dossiers/{code}").get_json().get("archive") or {}).get("state")

    sealed = _finished(gw)
    wait_for(lambda: state(sealed) == "sealed", 60, what="a sealed package")
    gw.tsa.faults("http_500", 10_000)
    try:
        waiting = _finished(gw)
        wait_for(lambda: state(waiting) == "failed", 30, what="a package waiting for the TSA")
        client = gw.app.test_client()
        sign_in(client)
        assert 'href="/ops/archive"' in client.get("/ops/").get_data(as_text=True)  # in the navigation
        page = client.get("/ops/archive").get_data(as_text=True)
    finally:
        gw.tsa.clear_faults()
    row = re.search(rf'<tr data-code="{re.escape(waiting)}" data-state="failed">(.*?)</tr>', page, re.S)
    assert row and "time-stamping authority" in row.group(1) and "Lỗi, đang thử lại" in row.group(1)
    attempts = int(re.search(r'<td class="num">(\d+)</td>', row.group(1)).group(1))
    assert attempts >= 1
    row = re.search(rf'<tr data-code="{re.escape(sealed)}" data-state="sealed">(.*?)</tr>', page, re.S)
    assert row and '<td class="verified">có</td>' in row.group(1) and "10 năm" in row.group(1)
    assert re.search(r'id="archive-counts".*data-state="failed">[1-9]', page, re.S)
    # The sealing lag: the waiting package's dossier finished a while ago, and the page says how long.
    lag = float(re.search(r'id="sealing-lag".*?data-seconds="([0-9.]+)"', page, re.S).group(1))
    assert lag > 0, page
    wait_for(lambda: state(waiting) == "sealed", 60, what="the package sealed once the TSA is back")


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        if REQUIRE:
            pytest.fail("Debian's chromium and chromium-driver are needed (.ci/run installs them)")
        pytest.skip("no chromium / chromedriver on this machine")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def test_an_operator_retries_a_dead_letter_in_a_browser(gw, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def texts(selector: str) -> list[str]:
        """What the page shows at `selector` now; nothing while a new page is still loading."""
        try:
            return [element.text for element in browser.find_elements(By.CSS_SELECTOR, selector)]
        except StaleElementReferenceException:
            return []

    code, dead = _dead_letter(gw)
    api = gw.api_url
    browser.get(f"{api}/ops/")
    assert browser.current_url.endswith("/ops/login")
    browser.find_element(By.ID, "key").send_keys("dev-ops-key")
    browser.find_element(By.ID, "login").click()
    row = wait_for(lambda: texts(f"#dead-{dead['id']}"), what="the dead letter on the dashboard")[0]
    assert code in row and "error_code 2" in row  # the dead letter, with its last error

    def charted() -> bool:  # the workers sample every half second here; a reload shows the newest minute
        browser.get(f"{api}/ops/")
        return bool(browser.find_elements(By.CSS_SELECTOR, "#queue-chart .dead"))

    wait_for(charted, 30, what="the dead letter drawn in the chart")
    browser.find_element(By.ID, "nav-archive").click()  # the archive page is one click away, and back
    wait_for(lambda: browser.find_elements(By.ID, "archive-sealed"), what="the archive page")
    browser.find_element(By.ID, "nav-drift").click()  # and so is the national portal's drift
    wait_for(lambda: browser.find_elements(By.ID, "drift-coverage"), what="the drift page")
    browser.find_element(By.ID, "nav-dashboard").click()
    wait_for(lambda: browser.find_elements(By.ID, "queue-chart"), what="the dashboard again")
    chart = browser.find_element(By.ID, "queue-chart")
    assert chart.is_displayed() and chart.size["width"] >= 600 and chart.size["height"] >= 150
    browser.find_element(By.ID, f"retry-{dead['id']}").click()
    wait_for(lambda: any("đã gửi lại" in text for text in texts(".flash")), what="the flash")

    def delivered() -> bool:
        browser.get(f"{api}/ops/?code={code}")
        states = texts("#traced td.state")
        return bool(states) and all(state == "done" for state in states)

    wait_for(delivered, 60, what="the dossier's jobs to show as done in the console")
    assert not browser.find_elements(By.ID, f"dead-{dead['id']}")
    assert gw.portal.dossier(code) is not None  # and the national portal has the dossier


def test_an_operator_reviews_portal_drift_in_a_browser(gw, browser):
    """The drift page: a dossier a portal operator changed (ahead: waiting for an operator) and one the portal
    lost (missing: repaired); recheck now, then accept the portal's version, each with its flash."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    from .test_portal_drift import findings, make_due

    def texts(selector: str) -> list[str]:
        try:
            return [element.text for element in browser.find_elements(By.CSS_SELECTOR, selector)]
        except StaleElementReferenceException:
            return []

    operated, lost = gw.file(dossier_body())["code"], gw.file(dossier_body())["code"]
    for code in (operated, lost):
        gw.step(code, 2)
        gw.wait_jobs(code)
    gw.portal.faults("operator_status", 1, services=["CapNhatTienDoHoSoMC"])
    gw.step(operated, 4)
    gw.wait_jobs(operated)
    gw.portal.faults("lose", 1, services=["CapNhatTienDoHoSoMC"])  # a step's record only: nothing follows it
    gw.step(lost, 4)
    gw.wait_jobs(lost)
    make_due(gw, [operated, lost])
    ahead = wait_for(lambda: [f for f in findings(gw, [operated]) if f["state"] == "operator"], 30,
                     what="the operator's change found")[0]
    wait_for(lambda: [f for f in findings(gw, [lost]) if f["state"] == "repaired"], 30, what="the lost one repaired")

    api = gw.api_url
    browser.get(f"{api}/ops/login")
    browser.find_element(By.ID, "key").send_keys("dev-ops-key")
    browser.find_element(By.ID, "login").click()
    wait_for(lambda: browser.find_elements(By.ID, "nav-drift"), what="the dashboard")
    browser.find_element(By.ID, "nav-drift").click()
    row = wait_for(lambda: texts(f"#finding-{ahead['id']}"), what="the finding on the drift page")[0]
    assert operated in row and "Chờ người vận hành" in row and "Cổng có thay đổi tỉnh không gửi" in row
    portal_side = texts(f"#finding-{ahead['id']} td.portal")
    assert any("Quản trị Cổng DVCQG" in text for text in portal_side)  # the operator's record, side by side
    repaired = texts(f"tr[data-code='{lost}'][data-state='repaired']")
    assert repaired and "Đã sửa" in repaired[0]
    browser.find_element(By.ID, f"recheck-{ahead['id']}").click()
    wait_for(lambda: any("đã xếp lịch đọc lại" in t for t in texts(".flash")), what="the recheck's flash")
    browser.find_element(By.ID, f"accept-{ahead['id']}").click()
    wait_for(lambda: any("đã chấp nhận bản của Cổng" in t for t in texts(".flash")), what="the accept's flash")
    row = wait_for(lambda: texts(f"#drift-closed ~ table #finding-{ahead['id']}"), what="the finding closed")[0]
    assert "Đã chấp nhận bản của Cổng" in row and "console:dev-ops" in row
    assert not browser.find_elements(By.ID, f"accept-{ahead['id']}")
    if shots := os.environ.get("GATEWAY_TEST_SCREENSHOTS"):  # to look at the page as an operator sees it
        browser.set_window_size(1280, 1400)
        browser.save_screenshot(f"{shots}/console-drift.png")
