"""What the browser tests share: the server's address, a Chromium, the API
calls a test makes besides the browser's, axe-core's scan, screenshots."""
import json
import os
import signal
import urllib.error
import urllib.request

from axe_core_python.selenium import Axe
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ.get("ALLOT_URL", "http://127.0.0.1:8080")
ADMIN_TOKEN = os.environ.get("ALLOT_ADMIN_TOKEN", "browser-tests-admin-token")
SCREENS = os.environ.get("ALLOT_SCREENS")


def cn_resident_id(serial):
    """A valid GB 11643 number (born 1990-01-01) for the demo campaign."""
    digits = f"11010119900101{serial % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return digits + "10X98765432"[sum(int(d) * w for d, w in zip(digits, weights)) % 11]


def call(method, path, body=None, token=None):
    """An API call: (status, JSON body or None)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as answer:
            text = answer.read()
            return answer.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None


def admin(method, path, body=None):
    status, answer = call(method, path, body, token=ADMIN_TOKEN)
    assert status < 300, f"{method} {path}: {status} {answer}"
    return answer


def book(serial, slot="pharmacy-1-h8", campaign="demo", citizen=None):
    """A reservation made through the API, as any client would."""
    status, answer = call("POST", f"/v1/campaigns/{campaign}/reservations",
                          {"citizen_id": citizen or cn_resident_id(serial), "slot_id": slot})
    assert status == 201, f"{status} {answer}"
    return answer


def make_campaign(campaign_id, slots=2, capacity=1, limit=1, scheme="any"):
    """An open campaign with one site, `hall`, and slots s0, s1, …"""
    admin("POST", "/v1/admin/campaigns", {
        "id": campaign_id, "name": f"Test {campaign_id}", "status": "open", "id_scheme": scheme,
        "per_citizen_limit": limit, "opens_at": "2020-01-01T00:00:00Z", "closes_at": "2099-01-01T00:00:00Z"})
    admin("PUT", f"/v1/admin/campaigns/{campaign_id}/sites",
          {"sites": [{"id": "hall", "name": "Town hall", "address": "1 Square"}]})
    admin("PUT", f"/v1/admin/campaigns/{campaign_id}/slots", {"slots": [
        {"id": f"s{n}", "site_id": "hall", "starts_at": f"2030-01-01T{9 + n:02d}:00:00Z",
         "ends_at": f"2030-01-01T{10 + n:02d}:00:00Z", "capacity": capacity} for n in range(slots)]})


def browser(width=1000, height=900, javascript=True, language="en-GB"):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-popup-blocking",
                     f"--window-size={width},{height}", f"--lang={language}"):
        options.add_argument(argument)
    preferences = {"intl.accept_languages": language}
    if not javascript:
        preferences["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", preferences)
    service = webdriver.ChromeService(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def heading(driver):
    return driver.find_element(By.TAG_NAME, "h1").text


def heading_becomes(driver, text, timeout=10):
    """Waits (a key press's navigation is not awaited by Selenium) for the page's h1."""
    # Mid-navigation the old page's elements vanish under the lookup.
    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException, WebDriverException)).until(
        lambda d: d.find_element(By.TAG_NAME, "h1").text == text)


def wait_for(driver, condition, timeout=10):
    """Waits for `condition(driver)`, looking again when a page is replaced meanwhile."""
    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException, WebDriverException)).until(condition)


def title_starts(driver, prefix, timeout=10):
    """Waits for the page whose title starts with `prefix` (after a click that posts a form)."""
    WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(lambda d: d.title.startswith(prefix))


def serious_violations(driver):
    """axe-core's serious and critical violations of WCAG 2.x A and AA on the current page."""
    result = Axe().run(driver, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def screenshot(driver, name, resize=True):
    """With ALLOT_SCREENS set (scripts/browser-tests.sh --screens), the page
    as <ALLOT_SCREENS>/<name>.png, the window made as tall as the page."""
    if SCREENS and not resize:
        driver.save_screenshot(os.path.join(SCREENS, name + ".png"))
    elif SCREENS:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        width = driver.execute_script("return window.innerWidth")
        driver.set_window_size(max(width, 500), min(max(height + 140, 600), 2400))
        driver.save_screenshot(os.path.join(SCREENS, name + ".png"))


def redis_pause():
    os.kill(int(os.environ["ALLOT_REDIS_PID"]), signal.SIGSTOP)


def redis_resume():
    os.kill(int(os.environ["ALLOT_REDIS_PID"]), signal.SIGCONT)
