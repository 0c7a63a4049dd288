"""The dashboard in headless Chromium: sign in through Airflow's login form, read the fleet page and
an image page, and find the dashboard in the Airflow UI's navigation. Screenshots go to
tests/artifacts/dashboard/ (each path is printed).
"""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from browser.chromium import WAIT, cell_texts, severity_chips, sign_in
from patchpipe.dashboard.render import short_digest


def test_the_fleet_and_an_image_page_show_the_ledger(dashboard, chrome, artifacts):
    server, expected = dashboard.server, dashboard.expected
    sign_in(chrome, server, "/patchpipe/", absent="vendor-app")
    WebDriverWait(chrome, WAIT).until(EC.presence_of_element_located((By.ID, "fleet")))

    for image, want in expected.items():
        image_cell, production, staging, findings, fixable, last_patched, last_result = cell_texts(chrome, image)
        assert image_cell.startswith(image)
        assert production == short_digest(want.production_digest)
        assert staging == short_digest(want.staging_digest)
        if want.open_by_severity is None:
            assert findings == "not assessed yet"
        else:
            assert severity_chips(chrome, image) == want.open_by_severity
        assert fixable.startswith(str(want.unpatched_fixable)) or (want.open_by_severity is None and fixable == "-")
        assert last_patched == (want.last_patched.strftime("%Y-%m-%d %H:%M UTC") if want.last_patched else "-")
        assert last_result.startswith(want.last_status)
    artifacts(chrome, "fleet")

    chrome.find_element(By.LINK_TEXT, "vendor-app").click()
    WebDriverWait(chrome, WAIT).until(EC.text_to_be_present_in_element((By.ID, "image-name"), "vendor-app"))
    history = chrome.find_element(By.ID, "history").text
    assert "production rolled back: analyze_production: request-duration 812.0 (bound 500)" in history
    assert "staging rolled back: analyze_staging: request-success-rate 42.0 (bound 99)" in history
    assert "failed at patch: apt-get install libc6=2.36-9+deb12u10 failed" in history
    open_findings = chrome.find_element(By.ID, "open-findings").text
    assert "CVE-2025-8058 libc6 critical 2026-11-21 02:01 UTC" in open_findings  # fixable since run B's assess
    assert "CVE-2011-3374 apt negligible no fix" in open_findings
    last_diff = chrome.find_element(By.ID, "last-diff").text
    assert "CVE-2025-8058 libc6 critical" in last_diff
    assert "libc-bin 2.36-9+deb12u9 → 2.36-9+deb12u10" in last_diff
    artifacts(chrome, "image-vendor-app")

    chrome.get(server.url + "/patchpipe/images/demo-web")
    fixed = chrome.find_element(By.ID, "fixed").text
    for cve in ("CVE-2024-56406", "CVE-2025-40909", "CVE-2025-6020"):
        assert cve in fixed
    artifacts(chrome, "image-demo-web")


def test_the_dashboard_is_in_the_airflow_ui_navigation(dashboard, chrome, artifacts):
    """"Patch fleet" in the UI's navigation shows the fleet page in an iframe, and the UI keeps the
    iframe's path in its own URL (/plugin/patchpipe/<path>), so a page inside can be linked to."""
    server = dashboard.server
    sign_in(chrome, server, "/patchpipe/", absent="vendor-app")
    chrome.get(server.url + "/")
    wait = WebDriverWait(chrome, WAIT)
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'a[href$="plugin/patchpipe"]'))).click()
    frame = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'iframe[src$="patchpipe/"]')))
    chrome.switch_to.frame(frame)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#fleet tr[data-image="vendor-app"]')))
    chrome.switch_to.default_content()
    wait.until(EC.url_to_be(server.url + "/plugin/patchpipe/patchpipe/"))
    artifacts(chrome, "airflow-ui")

    chrome.switch_to.frame(frame)
    chrome.find_element(By.LINK_TEXT, "vendor-app").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "image-name"), "vendor-app"))
    chrome.switch_to.default_content()
    wait.until(EC.url_to_be(server.url + "/plugin/patchpipe/patchpipe/images/vendor-app"))

    chrome.get(server.url + "/plugin/patchpipe/patchpipe/images/demo-web")  # a deep link
    chrome.switch_to.frame(wait.until(EC.presence_of_element_located((By.TAG_NAME, "iframe"))))
    wait.until(EC.text_to_be_present_in_element((By.ID, "image-name"), "demo-web"))
