"""The province dashboard on the real platform: the three APIs under gunicorn, the relay and
the Celery workers, with data seeded through kube-client. The dashboard runs in a thread
(werkzeug) and is driven by its Flask test client and by a real headless Chromium."""

from __future__ import annotations

import csv
import io
import re
import shutil
import threading
from urllib.parse import urlparse

import pytest
import requests
from openpyxl import load_workbook
from werkzeug.serving import make_server

from kube_client import KubeClient
from kube_dashboard import create_app
from kube_dashboard.settings import Settings

from registry_factories import member_payload
from support import wait_until

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver; .ci/run installs them)",
)
# A village in each region the tests use: two cities of Kalimantan Timur, one of Jawa Tengah.
VILLAGES = {"6471": "6471011001", "6472": "6472011001", "3374": "3374011001"}
OFFICERS = ("ketua", "sekretaris", "bendahara", "anggota", "anggota")


@pytest.fixture(scope="module")
def seeded(platform, token):
    """Groups in 6471, 6472 and 3374, a national programme, an application per group."""
    admin = KubeClient(**platform, token=token("admin"))
    groups: dict[str, list[dict]] = {}
    for city, village in VILLAGES.items():
        for n in range(2 if city != "3374" else 1):
            made = admin.registry.register_group(
                {
                    "name": f"KUBE Dasbor {city}-{n} <b>&",
                    "region_code": village,
                    "business_type": "tempe",
                },
                [member_payload(role=role) for role in OFFICERS],
            )
            groups.setdefault(city, []).append(made)
    ids = {g["id"] for made in groups.values() for g in made}

    def known_to_grants() -> bool:
        return ids <= {g["id"] for g in admin.grants.iter_groups(status="active")}

    wait_until(known_to_grants, timeout=120, interval=0.5)
    program = admin.grants.create_program(
        name="UEP Dasbor 2026",
        fiscal_year=2026,
        funding_source="apbn",
        region_code=None,
        total_budget=5_000_000_000,
        amount_rule="per_member",
        amount=2_000_000,
        min_members=5,
        max_members=20,
    )
    # Applications are made by a pendamping of the group's province.
    field = {p: KubeClient(**platform, token=token("pendamping", region=p)) for p in ("64", "33")}
    for city, made in groups.items():
        for group in made:
            field[city[:2]].grants.create_grant(
                group_id=group["id"],
                program_id=program["id"],
                business_plan="Menambah produksi tempe menjadi 50 kg kedelai per hari.",
            )
    first = groups["6472"][0]
    for day, revenue in (("2026-09-01", 1_500_000), ("2026-10-01", 2_250_000)):
        field["64"].registry.record_visit(
            first["id"], visited_on=day, monthly_revenue=revenue, topics=["marketing"]
        )
    yield groups
    for client in (admin, *field.values()):
        client.close()


@pytest.fixture(scope="module")
def dashboard(platform):
    """The dashboard on a free port, calling this run's platform."""
    settings = Settings(
        registry_url=platform["registry"],
        grants_url=platform["grants"],
        notifications_url=platform["notifications"],
        secret_key="uji-dasbor-" + "k" * 32,
    )
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "app": app}
    server.shutdown()
    thread.join(10)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def signed_in(dashboard, token_value: str):
    """A Flask test client signed in with a token, through the sign-in form."""
    client = dashboard["app"].test_client()
    form = client.get("/masuk").get_data(as_text=True)
    answer = client.post("/masuk", data={"token": token_value, "csrf_token": csrf_of(form)})
    assert answer.status_code == 302, answer.get_data(as_text=True)[-500:]
    return client


# Through the Flask test client: sign-in, CSRF, bad input, downloads


def test_a_refused_token_goes_back_to_sign_in_with_a_message(dashboard, seeded, token):
    client = dashboard["app"].test_client()
    form = client.get("/masuk").get_data(as_text=True)
    forged = token("kepala_dinas", region="64")[:-4] + "abcd"
    answer = client.post("/masuk", data={"token": forged, "csrf_token": csrf_of(form)})
    assert answer.status_code == 401
    assert "Token tidak berlaku" in answer.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_an_expired_session_token_returns_to_sign_in(dashboard, seeded, token):
    client = signed_in(dashboard, token("kepala_dinas", region="64", ttl_seconds=2))
    wait_until(lambda: client.get("/").status_code == 302, timeout=20, interval=0.5)
    page = client.get("/masuk").get_data(as_text=True)
    assert "Sesi Anda berakhir" in page


def test_every_form_needs_its_csrf_token(dashboard, seeded, token):
    client = signed_in(dashboard, token("kepala_dinas", region="64"))
    for path, data in (
        ("/masuk", {"token": token("admin")}),
        ("/bahasa", {"lang": "en"}),
        ("/keluar", {}),
    ):
        answer = client.post(path, data=data)
        assert answer.status_code == 400, path
        assert "Formulir kedaluwarsa" in answer.get_data(as_text=True)
    assert client.get("/").status_code == 200  # still signed in, still Indonesian


def test_bad_input_gives_a_readable_page_never_a_500(dashboard, seeded, token):
    client = signed_in(dashboard, token("kepala_dinas", region="64"))
    cases = {
        "/?region=abc": 400,
        "/?region=123": 400,
        "/?region=33": 422,  # outside the token's region: the API's 422, shown politely
        "/?hari=7": 400,
        "/kelompok/not-a-uuid": 404,
        "/kelompok/00000000-0000-0000-0000-000000000000": 404,
        "/unduh/ringkasan/wilayah.pdf": 404,
        "/unduh/nothing/wilayah.csv": 404,
        "/unduh/ringkasan/nothing.csv": 404,
        "/bandingkan?a=64&b=x": 400,
        "/masuk?token=" + "x" * 20000: 200,
        "/nowhere": 404,
    }
    for path, status in cases.items():
        answer = client.get(path)
        body = answer.get_data(as_text=True)
        assert answer.status_code == status, (path, body[-400:])
        assert "Traceback" not in body
    assert client.delete("/").status_code == 405


def test_the_language_switch_keeps_english_for_the_session(dashboard, seeded, token):
    client = signed_in(dashboard, token("kepala_dinas", region="64"))
    page = client.get("/").get_data(as_text=True)
    assert "Ringkasan" in page
    client.post("/bahasa", data={"lang": "en", "next": "/", "csrf_token": csrf_of(page)})
    assert "Overview" in client.get("/").get_data(as_text=True)


def test_group_names_are_escaped(dashboard, seeded, token):
    client = signed_in(dashboard, token("kepala_dinas", region="64"))
    page = client.get(f"/kelompok/{seeded['6472'][0]['id']}").get_data(as_text=True)
    assert "KUBE Dasbor 6472-0 &lt;b&gt;&amp;" in page
    assert "<b>&" not in page


def test_a_formula_like_name_downloads_as_text(dashboard, seeded, token):
    from kube_dashboard.tables import Column, Table, to_csv, to_xlsx

    table = Table("t", "t", [Column("name", "name")], [{"name": "=HYPERLINK(1)"}])
    assert "'=HYPERLINK(1)" in to_csv(table, ["name"]).decode("utf-8-sig")
    sheet = load_workbook(io.BytesIO(to_xlsx(table, ["name"], "t"))).active
    assert sheet["A2"].value == "'=HYPERLINK(1)"


# In a real Chromium


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1100",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def requested_urls(driver) -> list[str]:
    """Every URL the browser asked for since the last call (Chrome's performance log)."""
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def browser_sign_in(driver, dashboard, token_value: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{dashboard['url']}/masuk?token={token_value}")
    driver.find_element(By.ID, "sign-in").click()
    wait_until(lambda: "/masuk" not in driver.current_url, timeout=30, interval=0.2)


def shot(driver, tmp_path, name: str) -> None:
    driver.save_screenshot(str(tmp_path / f"{name}.png"))


def card(driver, key: str):
    from selenium.webdriver.common.by import By

    value = driver.find_element(By.ID, f"card-{key}").get_attribute("data-value")
    return None if value == "" else float(value)


def region_cells(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, "#table-wilayah td[data-key=region_code]")
    return [c.get_attribute("data-value") for c in cells]


@needs_browser
def test_a_head_of_office_reads_the_province_in_a_browser(
    browser, dashboard, seeded, platform, token, tmp_path
):
    from selenium.webdriver.common.by import By

    head = token("kepala_dinas", region="64")
    api = KubeClient(**platform, token=head)
    browser_sign_in(browser, dashboard, head)

    # The overview's numbers are the APIs' own figures for the same token.
    browser.get(f"{dashboard['url']}/")
    shot(browser, tmp_path, "overview")
    groups = api.registry.report_groups(level="regency", region="64")["total"]
    flow = api.grants.report_pipeline(level="regency", region="64")["total"]
    since = browser.find_element(By.ID, "since").get_attribute("data-since")
    reach = api.notifications.report_reach(level="regency", region="64", since=since)["total"]
    assert card(browser, "groups") == groups["groups"] >= 4
    assert card(browser, "members") == groups["members"]
    assert card(browser, "groups-active") == groups["by_status"]["active"]
    assert card(browser, "applications") == flow["count"] >= 4
    assert card(browser, "reached") == reach["reached_pct"]
    assert {"6471", "6472"} <= set(region_cells(browser))
    assert all(code.startswith("64") for code in region_cells(browser))
    assert browser.find_element(By.ID, "chart-groups").size["height"] > 0

    # Drill down to one regency: its districts only.
    browser.find_element(By.CSS_SELECTOR, "#table-wilayah a.drill[href*='region=6472']").click()
    wait_until(
        lambda: browser.find_element(By.ID, "region-now").get_attribute("data-region") == "6472"
    )
    shot(browser, tmp_path, "overview-6472")
    districts = region_cells(browser)
    assert districts and all(len(c) == 6 and c.startswith("6472") for c in districts)
    city = api.registry.report_groups(level="district", region="6472")["total"]
    assert card(browser, "groups") == city["groups"]

    for path, name in (
        ("/alur", "pipeline"),
        ("/anggaran", "budgets"),
        ("/pesan", "messages"),
        (f"/kelompok/{seeded['6472'][0]['id']}", "group"),
    ):
        browser.get(dashboard["url"] + path)
        shot(browser, tmp_path, name)
        assert not browser.find_elements(By.ID, "error"), path
    # The group page: members as the API masks them, and its revenue trend drawn.
    nik_cells = browser.find_elements(By.CSS_SELECTOR, "#table-anggota td[data-key=nik]")
    assert len(nik_cells) == 5
    assert all("*" in c.text for c in nik_cells)
    phones = browser.find_elements(By.CSS_SELECTOR, "#table-anggota td[data-key=phone]")
    assert phones and all("*" in c.text for c in phones)
    assert browser.find_element(By.ID, "chart-revenue").size["height"] > 0

    # A comparison with another province: this token may not see 33, and says so.
    browser.get(f"{dashboard['url']}/bandingkan?a=64&b=33")
    shot(browser, tmp_path, "compare-refused")
    assert browser.find_element(By.ID, "refused-b").is_displayed()
    assert not browser.find_elements(By.ID, "refused-a")
    a_groups = browser.find_element(
        By.CSS_SELECTOR, "#table-perbandingan tbody tr:first-child td[data-key=a]"
    ).get_attribute("data-value")
    assert int(a_groups) == api.registry.report_groups(region="64")["total"]["groups"]

    # A download opens as a spreadsheet, with the browser's own session.
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    rows_csv = requests.get(
        f"{dashboard['url']}/unduh/ringkasan/wilayah.csv?region=64", cookies=cookies, timeout=30
    )
    assert rows_csv.status_code == 200
    parsed = list(csv.DictReader(io.StringIO(rows_csv.content.decode("utf-8-sig"))))
    assert {r["Wilayah"] for r in parsed} >= {"6471", "6472"}
    assert sum(int(r["Kelompok"]) for r in parsed) == groups["groups"]
    rows_xlsx = requests.get(
        f"{dashboard['url']}/unduh/ringkasan/wilayah.xlsx?region=64", cookies=cookies, timeout=30
    )
    sheet = load_workbook(io.BytesIO(rows_xlsx.content)).active
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][0] == "Wilayah"
    assert sum(row[2] for row in table[1:]) == groups["groups"]

    # Nothing was asked of any host but the dashboard's own (no CDN, no font service).
    own = urlparse(dashboard["url"]).netloc
    asked = requested_urls(browser)
    assert asked
    # chrome://, data: and blob: URLs are the browser's own pages and inline data: no host.
    network = [u for u in asked if urlparse(u).scheme in {"http", "https", "ws", "wss", "ftp"}]
    assert any(u.endswith("/static/vendor/chart.umd.min.js") for u in network)
    strangers = [u for u in network if urlparse(u).netloc != own]
    assert strangers == []
    api.close()


@needs_browser
def test_a_nationwide_admin_compares_two_provinces(browser, dashboard, seeded, platform, token):
    from selenium.webdriver.common.by import By

    admin = token("admin")
    browser_sign_in(browser, dashboard, admin)
    browser.get(f"{dashboard['url']}/bandingkan")
    browser.find_element(By.ID, "region-a").send_keys("64")
    browser.find_element(By.ID, "region-b").send_keys("33")
    browser.find_element(By.ID, "compare").click()
    wait_until(lambda: "b=33" in browser.current_url)
    api = KubeClient(**platform, token=admin)
    for side, code in (("a", "64"), ("b", "33")):
        cell = browser.find_element(
            By.CSS_SELECTOR, f"#table-perbandingan tbody tr:first-child td[data-key={side}]"
        )
        assert (
            int(cell.get_attribute("data-value"))
            == (api.registry.report_groups(region=code)["total"]["groups"])
        )
    assert not browser.find_elements(By.CSS_SELECTOR, ".refusal")
    api.close()


@needs_browser
def test_a_pendamping_of_one_city_never_sees_another(
    browser, dashboard, seeded, platform, token, tmp_path
):
    from selenium.webdriver.common.by import By

    browser_sign_in(browser, dashboard, token("pendamping", region="6471"))
    browser.get(f"{dashboard['url']}/")
    shot(browser, tmp_path, "pendamping-overview")
    assert all(code.startswith("6471") for code in region_cells(browser))
    page = browser.page_source
    for other in seeded["6472"] + seeded["3374"]:
        assert other["id"] not in page
    browser.get(f"{dashboard['url']}/alur")
    assert "6472" not in browser.find_element(By.ID, "table-terlambat").text
    # Another city's group, its data and its figures stay out of reach.
    browser.get(f"{dashboard['url']}/kelompok/{seeded['6472'][0]['id']}")
    assert browser.find_element(By.ID, "error").get_attribute("data-status") == "404"
    assert "6472-0" not in browser.page_source
    browser.get(f"{dashboard['url']}/?region=6472")
    assert browser.find_element(By.ID, "error").get_attribute("data-status") == "422"
    browser.get(f"{dashboard['url']}/bandingkan?a=6471&b=6472")
    shot(browser, tmp_path, "pendamping-compare")
    assert browser.find_element(By.ID, "refused-b").is_displayed()
    own = browser.find_element(
        By.CSS_SELECTOR, "#table-perbandingan tbody tr:first-child td[data-key=a]"
    ).get_attribute("data-value")
    assert int(own) == len(seeded["6471"])
