"""Headless Chromium for the dashboard's tests: tests/browser, and tests/e2e/test_dashboard_lab.py on
the lab's real ledger. One way to start it, sign in and read a fleet row, so both see the pages the
same way.

Chromium is Debian's ``chromium`` with ``chromium-driver`` (.ci/run installs both), driven by Selenium.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 60


def start_chromium(profile: Path):
    """Headless Chromium through chromedriver, with a fresh profile in ``profile``; quit it when done."""
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: `apt-get install chromium chromium-driver` (as .ci/run does)",
                        pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture
def chrome(tmp_path):
    """Headless Chromium with a fresh profile, quit after the test; import it into a test module to use it."""
    driver = start_chromium(tmp_path / "chromium-profile")
    yield driver
    driver.quit()


def sign_in(driver, server, next_path: str, *, absent: str | None = None) -> None:
    """Open ``next_path`` signed out, follow the sign-in link and log in as admin in Airflow's form.

    ``absent``: text the signed-out page must not show (ledger data).
    """
    driver.get(server.url + next_path)
    assert driver.find_element(By.TAG_NAME, "h1").text == "Sign in to Airflow"
    if absent:
        assert absent not in driver.find_element(By.TAG_NAME, "main").text
    driver.find_element(By.LINK_TEXT, "Sign in").click()
    wait = WebDriverWait(driver, WAIT)
    wait.until(EC.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(server.password("admin"))
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.url_to_be(server.url + next_path))


def cell_texts(driver, image: str) -> list[str]:
    """The texts of ``image``'s row on the fleet page: image, production, staging, open findings,
    unpatched fixable, last patched, last result."""
    row = driver.find_element(By.CSS_SELECTOR, f'#fleet tr[data-image="{image}"]')
    return [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]


def severity_chips(driver, image: str) -> dict[str, int]:
    """``{severity: count}`` of the open-findings chips in ``image``'s fleet row."""
    chips = driver.find_elements(By.CSS_SELECTOR, f'#fleet tr[data-image="{image}"] [data-severity]')
    return {chip.get_attribute("data-severity"): int(chip.text) for chip in chips}


def save_screenshot(driver, directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"could not save a screenshot to {path}"
    return path
