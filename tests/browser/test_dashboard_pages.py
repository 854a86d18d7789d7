"""The dashboard in a real browser (Debian's headless Chromium, Playwright) against a real
``gridpulse dashboard`` process reading the real stack (tests/browser/conftest.py).

As a person would: sign in, read the figures, click a point, acknowledge an alert, switch the
language; each view's screenshot is kept in bench/out/screenshots/.
"""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import topics as contract
from schemas.models import ScoresCustomer
from tests.browser.harness import Session, Stack

pytestmark = pytest.mark.integration

PAGES = ["/", "/matrix", "/customers/C0000", "/alerts", "/outages", "/reliability", "/areas"]
QUADRANT_ZH = {"vip": "贵宾型", "improvement": "改进型", "maintenance": "维持型", "abandon": "放弃型"}


def number(text: str) -> float:
    return float(text.replace(",", "").replace("%", "").strip())


def wait_matrix(s: Session, draws: int = 1) -> dict[str, Any]:
    s.page.wait_for_function(f"window.gpMatrix && window.gpMatrix.draws >= {draws}", timeout=30_000)
    matrix: dict[str, Any] = s.page.evaluate("window.gpMatrix")
    return matrix


def test_signed_out_only_the_sign_in_page(open_session: Any, stack: Stack) -> None:
    s = open_session()
    for path in PAGES:
        s.goto(path)
        s.page.wait_for_url("**/login**", timeout=10_000)
        assert s.page.locator("[data-testid=login-form]").is_visible()
        assert s.page.locator("#gp-header").count() == 0  # no navigation, no data
    for path in ("/api/overview", "/api/matrix", "/api/customers/C0000", "/api/alerts", "/api/me"):
        assert s.context.request.get(stack.url + path).status == 401, path
    assert s.context.request.get(stack.url + "/events?kinds=scores").status == 401
    s.screenshot("login")
    assert s.errors == []


def test_sign_in_with_the_form_then_the_overview(open_session: Any, stack: Stack) -> None:
    s = open_session()
    s.goto("/")
    s.page.wait_for_url("**/login**")
    user = stack.users["li"]
    s.page.fill("[data-testid=login-user]", user.user)
    s.page.fill("[data-testid=login-password]", "not the password")
    s.page.click("[data-testid=login-submit]")
    s.page.wait_for_function("document.querySelector('[data-testid=login-error]').textContent.length > 0")
    assert s.page.inner_text("[data-testid=login-error]") == "用户名或密码错误"
    assert "/login" in s.page.url
    s.page.fill("[data-testid=login-password]", user.password)
    s.page.click("[data-testid=login-submit]")
    s.page.wait_for_url(stack.url + "/")
    s.wait_rendered()
    pop = stack.population
    assert number(s.page.inner_text("[data-testid=customers-scored]")) == len(pop.scores)
    for q, n in pop.quadrant_counts().items():
        assert number(s.page.inner_text(f"[data-testid=quadrant-{q}]")) == n, q
    assert s.page.inner_text("[data-testid=user]").startswith("li")
    system = next(d for d in pop.reliability if d["scope_id"] == "system")
    assert number(s.page.inner_text("[data-testid=system-saidi]")) == pytest.approx(
        system["SAIDI"], abs=0.005
    )
    s.screenshot("overview")
    # the browser logs the wrong password's 401 answer; nothing else may go wrong
    assert [e for e in s.errors if "status of 401" not in e] == []


def test_signing_in_goes_back_to_the_page_asked_for(open_session: Any, stack: Stack) -> None:
    s = open_session()
    s.goto("/alerts?severity=critical")
    s.page.wait_for_url("**/login?next=**")
    user = stack.users["li"]
    s.page.fill("[data-testid=login-user]", user.user)
    s.page.fill("[data-testid=login-password]", user.password)
    s.page.click("[data-testid=login-submit]")
    s.page.wait_for_url(stack.url + "/alerts?severity=critical")
    s.wait_rendered()
    assert s.errors == []


def test_value_matrix_one_point_per_scored_customer(open_session: Any, stack: Stack) -> None:
    pop = stack.population
    s = open_session("li")
    s.goto("/matrix")
    matrix = wait_matrix(s)
    assert matrix["count"] == len(pop.scores)
    assert matrix["points"] == len(pop.scores)  # what was handed to the chart
    assert matrix["quadrants"] == pop.quadrant_counts()  # the topic's latest documents
    origin = next(iter(pop.scores.values()))["value_origin"]
    assert matrix["origin"] == origin
    for q, n in pop.quadrant_counts().items():
        assert number(s.page.inner_text(f"[data-testid=matrix-quadrant-{q}]")) == n
    # the chart holds every point, grouped by credit grade
    grades = s.page.evaluate(
        """() => echarts.getInstanceByDom(document.getElementById('matrix-chart')).getOption().series
                 .filter(x => x.id !== 'origin').reduce((m, x) => {
                     m[x.name] = (m[x.name] || 0) + (x.data ? x.data.length / 2 : 0); return m; }, {})"""
    )
    expected: dict[str, int] = {}
    for doc in pop.scores.values():
        name = f"信用等级 {doc['credit_grade']}"
        expected[name] = expected.get(name, 0) + 1
    assert {k: v for k, v in grades.items() if v} == expected
    s.screenshot("matrix")
    assert s.errors == []


def test_click_a_point_opens_the_customer_with_its_latest_stats(open_session: Any, stack: Stack) -> None:
    pop = stack.population
    s = open_session("li")
    s.goto("/matrix")
    wait_matrix(s)
    # the point farthest from every other, so that the mouse hits it and nothing else
    cid, _gap, (x, y) = s.page.evaluate(
        """(ids) => {
            const pts = ids.map((id) => [id, window.gpMatrix.locate(id)]).filter(([, p]) => p);
            let best = null;
            for (const [id, p] of pts) {
                let d = Infinity;
                for (const [other, q] of pts) {
                    if (other !== id) d = Math.min(d, Math.hypot(p[0] - q[0], p[1] - q[1]));
                }
                if (!best || d > best[1]) best = [id, d, p];
            }
            return best;
        }""",
        pop.customers,
    )
    box = s.page.locator("#matrix-chart").bounding_box()
    s.page.mouse.move(box["x"] + x, box["y"] + y)
    s.page.wait_for_function(
        "(cid) => document.getElementById('matrix-chart').innerText.includes(cid)", arg=cid, timeout=5_000
    )
    tip = s.page.inner_text("#matrix-chart")
    assert f"{pop.scores[cid]['current_value']:.3f}".rstrip("0").rstrip(".") in tip  # its figures
    s.page.mouse.click(box["x"] + x, box["y"] + y)
    s.page.wait_for_url(f"**/customers/{cid}")
    s.wait_rendered()
    latest, stale = pop.stats[cid], pop.stale_stats[cid]
    assert latest["ts"] > stale["ts"]
    assert s.page.get_attribute("body", "data-stats-ts") == latest["ts"]
    for w in ("day", "d30", "month"):
        for f in ("kwh", "kvarh", "avg_kw", "max_kw", "load_factor", "power_factor", "intervals"):
            el = s.page.locator(f"[data-testid=w-{w}-{f}]")
            want = latest[w][f]
            raw = el.get_attribute("data-value")
            if want is None:
                assert raw == "" and el.inner_text() == "—", (w, f)
            else:
                assert float(raw) == want, (w, f)
                assert number(el.inner_text()) == pytest.approx(want, abs=0.006), (w, f)
    for f in ("outstanding", "oldest_overdue_days", "late_fees_12m", "paid_36m", "due_36m"):
        raw = s.page.get_attribute(f"[data-testid=arrears-{f}]", "data-value")
        assert float(raw) == latest["arrears"][f], f
    for f in ("pf_standard", "pf_adjustment_pct", "projected_power_factor"):
        raw = s.page.get_attribute(f"[data-testid=pf-{f}]", "data-value")
        assert (float(raw) if raw else None) == latest["month"][f], f
    assert s.page.get_attribute("[data-testid=customer-consumption]", "data-months") == "26"
    assert s.page.inner_text("[data-testid=scores-quadrant]") == QUADRANT_ZH[pop.scores[cid]["quadrant"]]
    # the explanation: eight indicators with their contributions
    assert s.page.locator("[data-testid=explanation-table] tbody tr").count() == 8
    s.screenshot("customer")
    assert s.errors == []


def test_a_new_score_reaches_the_open_pages_without_reload(open_session: Any, stack: Stack) -> None:
    pop = stack.population
    cid = next(c for c in reversed(pop.customers) if pop.scores[c]["quadrant"] == "abandon")
    s = open_session("li")
    s.goto("/matrix")
    before = wait_matrix(s)
    customer_page = s.context.new_page()
    customer_page.goto(f"{stack.url}/customers/{cid}")
    customer_page.wait_for_selector("body[data-rendered=true]", state="attached")
    for page in (s.page, customer_page):
        page.evaluate("window.__notReloaded = true")

    old = pop.scores[cid]
    new = copy.deepcopy(old)
    origin = old["value_origin"]
    new.update(
        ts=(datetime.fromisoformat(old["ts"]) + timedelta(minutes=5)).isoformat(),
        current_value=round(origin["current"] + 0.6, 4),
        potential_value=round(origin["potential"] + 0.3, 4),
        quadrant="vip",
    )
    new = ScoresCustomer.model_validate(new).model_dump(mode="json")
    published = time.monotonic()
    stack.publish(contract.SCORES_CUSTOMER, cid, new)
    pop.scores[cid] = new
    expected = pop.quadrant_counts()
    assert expected != before["quadrants"]

    s.page.wait_for_function(
        "(q) => window.gpMatrix.quadrants.vip === q.vip && window.gpMatrix.quadrants.abandon === q.abandon",
        arg=expected,
        timeout=15_000,
    )
    matrix_delay = time.monotonic() - published
    customer_page.wait_for_function(
        "(v) => document.querySelector('[data-testid=scores-current]').dataset.value === String(v)",
        arg=new["current_value"],
        timeout=15_000,
    )
    customer_delay = time.monotonic() - published
    assert number(s.page.inner_text("[data-testid=matrix-quadrant-vip]")) == expected["vip"]
    assert customer_page.inner_text("[data-testid=scores-quadrant]") == QUADRANT_ZH["vip"]
    px = s.page.evaluate("(cid) => window.gpMatrix.locate(cid)", cid)
    want = s.page.evaluate(
        "(v) => echarts.getInstanceByDom(document.getElementById('matrix-chart')).convertToPixel("
        "{xAxisIndex: 0, yAxisIndex: 0}, v)",
        [new["current_value"], new["potential_value"]],
    )
    assert px == pytest.approx(want)  # the point moved to its new place
    for page in (s.page, customer_page):
        assert page.evaluate("window.__notReloaded") is True
    print(f"score published -> matrix {matrix_delay:.2f} s, customer page {customer_delay:.2f} s")
    assert s.errors == []


def test_the_matrix_asked_for_before_its_stream_misses_nothing(open_session: Any, stack: Stack) -> None:
    """The page asks for /api/matrix beside its stream, not after it: here the stream is held
    back until a score has been published and taken in by the dashboard (after the snapshot,
    before the subscription: on neither). The stream's `subscribed` version is then above the
    snapshot's X-Feed-Version and the page fetches the matrix again: the score is shown."""
    pop = stack.population
    cid = next(c for c in pop.customers if pop.scores[c]["quadrant"] == "maintenance")
    s = open_session("li")
    held: list[Any] = []
    s.page.route("**/events?*", lambda route: held.append(route))  # the stream's request waits here
    s.goto("/matrix")
    before = wait_matrix(s)
    assert before["count"] == len(pop.scores) and before["draws"] == 1
    assert len(held) == 1

    old = pop.scores[cid]
    new = copy.deepcopy(old)
    origin = old["value_origin"]
    new.update(
        ts=(datetime.fromisoformat(old["ts"]) + timedelta(minutes=7)).isoformat(),
        current_value=round(origin["current"] + 0.4, 4),
        potential_value=round(origin["potential"] + 0.5, 4),
        quadrant="vip",
    )
    new = ScoresCustomer.model_validate(new).model_dump(mode="json")
    stack.publish(contract.SCORES_CUSTOMER, cid, new)
    pop.scores[cid] = new
    expected = pop.quadrant_counts()
    api = stack.api("li")
    deadline = time.monotonic() + 15
    while api.get(f"/api/customers/{cid}").json()["scores"]["ts"] != new["ts"]:
        assert time.monotonic() < deadline, "the dashboard did not take the score in"
        time.sleep(0.1)
    api.close()
    assert s.page.evaluate("window.gpMatrix.quadrants") == before["quadrants"]  # not seen yet

    held[0].continue_()
    s.page.wait_for_function(
        "(q) => window.gpMatrix.quadrants.vip === q.vip"
        " && window.gpMatrix.quadrants.maintenance === q.maintenance",
        arg=expected,
        timeout=15_000,
    )
    after = s.page.evaluate("window.gpMatrix")
    assert after["count"] == len(pop.scores) and after["quadrants"] == expected
    px = s.page.evaluate("(cid) => window.gpMatrix.locate(cid)", cid)
    want = s.page.evaluate(
        "(v) => echarts.getInstanceByDom(document.getElementById('matrix-chart')).convertToPixel("
        "{xAxisIndex: 0, yAxisIndex: 0}, v)",
        [new["current_value"], new["potential_value"]],
    )
    assert px == pytest.approx(want)
    assert s.errors == []


def test_a_manager_acknowledges_an_alert_recorded_in_postgresql(open_session: Any, stack: Stack) -> None:
    pop = stack.population
    alert_id = "credit:C0000:overdue_30"
    s = open_session("wang")  # manager M01
    s.goto("/alerts")
    s.wait_rendered()
    rows = s.page.locator("[data-testid=alert-row]")
    listed = {rows.nth(i).get_attribute("data-alert-id") for i in range(rows.count())}
    assert listed == {a["alert_id"] for a in pop.alerts_of("M01")}  # only M01's customers
    assert "credit:C0001:overdue_30" not in listed
    row = s.page.locator(f"[data-testid=alert-row][data-alert-id='{alert_id}']")
    assert row.get_attribute("data-acknowledged") == "false"
    s.screenshot("alerts")
    clicked = datetime.now(UTC)
    row.locator("[data-testid=ack-button]").click()
    s.page.wait_for_selector(f"[data-testid=alert-row][data-alert-id='{alert_id}'][data-acknowledged=true]")
    assert row.locator("[data-testid=acked]").get_attribute("data-by") == "M01"
    (rec,) = stack.sql("SELECT acknowledged_by, acknowledged_at FROM alerts WHERE alert_id = $1", alert_id)
    assert rec["acknowledged_by"] == "M01"
    assert (
        clicked - timedelta(seconds=5) <= rec["acknowledged_at"] <= datetime.now(UTC) + timedelta(seconds=5)
    )
    # another manager's alert: not listed, and the API refuses
    r = s.context.request.post(f"{stack.url}/api/alerts/credit:C0001:overdue_30/ack")
    assert r.status == 403
    s.screenshot("alerts_acknowledged")
    assert s.errors == []


def test_a_viewer_cannot_acknowledge(open_session: Any, stack: Stack) -> None:
    alert_id = "credit:C0002:overdue_30"
    s = open_session("zhao")
    s.goto("/alerts")
    s.wait_rendered()
    assert s.page.locator("[data-testid=alert-row]").count() == len(stack.population.alerts)
    assert s.page.locator(f"[data-testid=alert-row][data-alert-id='{alert_id}']").count() == 1
    assert s.page.locator("[data-testid=ack-button]").count() == 0
    r = s.context.request.post(f"{stack.url}/api/alerts/{alert_id}/ack")
    assert r.status == 403
    (rec,) = stack.sql("SELECT acknowledged_by, acknowledged_at FROM alerts WHERE alert_id = $1", alert_id)
    assert rec["acknowledged_at"] is None and rec["acknowledged_by"] is None
    assert s.errors == []


def test_alert_filters_and_a_customers_alerts_with_history(open_session: Any, stack: Stack) -> None:
    pop = stack.population
    s = open_session("li")
    s.goto("/alerts")
    s.wait_rendered()
    s.page.select_option("[data-testid=filter-severity]", "critical")
    s.page.select_option("[data-testid=filter-kind]", "credit")
    s.page.click("[data-testid=filter-apply]")
    want = {a["alert_id"] for a in pop.alerts if a["severity"] == "critical" and a["kind"] == "credit"}
    s.page.wait_for_function(
        "(n) => document.querySelectorAll('[data-testid=alert-row]').length === n", arg=len(want)
    )
    rows = s.page.locator("[data-testid=alert-row]")
    assert {rows.nth(i).get_attribute("data-alert-id") for i in range(rows.count())} == want
    assert "severity=critical" in s.page.url  # the filter is in the URL: a link can be shared
    s.page.fill("[data-testid=filter-manager]", "M02")
    s.page.select_option("[data-testid=filter-severity]", "")
    s.page.select_option("[data-testid=filter-kind]", "")
    s.page.click("[data-testid=filter-apply]")
    want = {a["alert_id"] for a in pop.alerts_of("M02")}
    s.page.wait_for_function(
        "(n) => document.querySelectorAll('[data-testid=alert-row]').length === n", arg=len(want)
    )
    assert {rows.nth(i).get_attribute("data-alert-id") for i in range(rows.count())} == want

    cid = "C0003"
    s.goto(f"/customers/{cid}")
    s.wait_rendered()
    own = [a for a in pop.alerts if a.get("customer_id") == cid]
    listed = s.page.locator("[data-testid=customer-alert]")
    assert [listed.nth(i).get_attribute("data-alert-id") for i in range(listed.count())] == [
        a["alert_id"] for a in own
    ]
    assert "(1)" in listed.nth(0).locator("summary").inner_text()  # its history: the opening
    assert s.errors == []


def test_the_english_switch_changes_the_labels(open_session: Any, stack: Stack) -> None:
    s = open_session("li")
    s.goto("/")
    s.wait_rendered()
    assert s.page.inner_text("[data-testid=nav-overview]") == "总览"
    assert s.page.inner_text("h1") == "总览"
    assert s.page.get_attribute("html", "lang") == "zh-CN"
    s.page.click("[data-testid=lang-switch]")
    assert s.page.inner_text("[data-testid=nav-overview]") == "Overview"
    assert s.page.inner_text("h1") == "Overview"
    assert s.page.get_attribute("html", "lang") == "en"
    assert "Customers scored" in s.page.inner_text("[data-testid=overview-cards]")
    assert "VIP" in s.page.inner_text("[data-testid=overview-quadrants]")
    s.screenshot("overview_en")
    s.goto("/alerts")  # kept across pages
    s.wait_rendered()
    assert s.page.inner_text("h1") == "Alerts"
    s.goto("/alerts?lang=zh")  # the URL overrides
    s.wait_rendered()
    assert s.page.inner_text("h1") == "预警"
    assert s.errors == []


def test_outages_reliability_and_areas(open_session: Any, stack: Stack) -> None:
    pop = stack.population
    s = open_session("li")
    s.goto("/outages")
    s.wait_rendered()
    active = s.page.locator("[data-testid=outages-active] [data-testid=outage]")
    assert active.count() == 1 and active.get_attribute("data-outage-id") == "O-active"
    doc = next(a for a in pop.alerts if a["alert_id"] == "outage:O-active")
    assert number(active.locator("[data-testid=totals-loss_of_supply]").inner_text()) == 2
    assert number(active.locator("[data-testid=totals-loss_of_redundancy]").inner_text()) == 1
    kw = sum(a["est_kw"] for a in doc["affected"] if a["est_kw"] is not None)
    assert number(active.locator("[data-testid=totals-kw]").inner_text()) == pytest.approx(kw, abs=0.05)
    rows = active.locator("[data-testid=affected-table] tbody tr")
    assert [rows.nth(i).get_attribute("data-customer-id") for i in range(rows.count())] == [
        a["customer_id"] for a in doc["affected"]
    ]  # most important first, as published
    planned = s.page.locator("[data-testid=outages-planned] [data-testid=outage]")
    assert planned.get_attribute("data-outage-id") == "O-planned"
    restored = s.page.locator("[data-testid=outages-restored] [data-testid=outage]")
    assert restored.get_attribute("data-outage-id") == "O-restored"
    s.screenshot("outages")

    s.goto("/reliability")
    s.wait_rendered()
    feeders = s.page.locator("[data-testid=feeder-row]")
    by_saidi = sorted((d for d in pop.reliability if d["scope_id"] != "system"), key=lambda d: -d["SAIDI"])
    assert [feeders.nth(i).get_attribute("data-feeder") for i in range(feeders.count())] == [
        d["scope_id"] for d in by_saidi
    ]
    s.screenshot("reliability")

    s.goto("/areas")
    s.wait_rendered()
    areas = s.page.locator("[data-testid=area-row]")
    assert [areas.nth(i).get_attribute("data-area") for i in range(areas.count())] == ["TA01", "TA02"]
    suspects = areas.nth(0).locator("[data-testid=suspect] a")
    assert suspects.nth(0).inner_text() == pop.customers[20]
    assert number(areas.nth(0).locator("[data-testid=area-loss-d30]").inner_text()) == pytest.approx(
        pop.areas[0]["d30"]["loss_rate"] * 100, abs=0.01
    )
    s.screenshot("areas")
    assert s.errors == []


def test_malformed_documents_never_break_a_page(open_session: Any, stack: Stack) -> None:
    pop = stack.population
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    client = stack.api("li")
    try:
        malformed_before = sum(client.get("/api/overview").json()["data_health"]["malformed"].values())
        stack.publish(contract.SCORES_CUSTOMER, "CBAD1", b"not json {")
        stack.publish(contract.SCORES_CUSTOMER, "CBAD2", b"[1, 2, 3]")
        stack.publish(contract.SCORES_CUSTOMER, "CBAD3", {"customer_id": "CBAD3", "current_value": 2})
        # well-formed for the feed (key and ts), nonsense for a page
        stack.publish(
            contract.STATS_CUSTOMER,
            "CBAD4",
            {
                "customer_id": "CBAD4",
                "ts": later,
                "day": "garbage",
                "d30": [1, 2],
                "month": {"kwh": "12", "power_factor": None, "pf_adjustment_pct": {"x": 1}},
                "arrears": None,
                "hourly_kw": "flat",
                "consumption": {"2026-01": "many", "bad": 3},
            },
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            health = client.get("/api/overview").json()["data_health"]
            if sum(health["malformed"].values()) >= malformed_before + 3:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"the dashboard did not count the malformed documents: {health['malformed']}")
        while client.get("/api/customers/CBAD4").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.3)
    finally:
        client.close()

    s = open_session("li")
    s.goto("/customers/CBAD4")
    s.wait_rendered()
    assert s.page.locator("[data-testid=windows-table]").count() == 1
    assert s.page.inner_text("[data-testid=w-day-kwh]") == "—"
    assert s.page.inner_text("[data-testid=arrears-outstanding]") == "—"
    s.screenshot("customer_malformed")
    s.goto("/matrix")
    assert wait_matrix(s)["count"] == len(pop.scores)
    s.goto("/")
    s.wait_rendered()
    assert "scores.customer" in s.page.inner_text("[data-testid=malformed-table]")
    assert s.errors == []
