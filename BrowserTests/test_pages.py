"""The citizen pages in Chromium (scripts/browser-tests.sh starts the server
with its demo campaign and sets ALLOT_URL).

Covered so far (issue 13's first step): from / to a site's times by links,
with JavaScript and without; a 320 px wide screen; keyboard only (the skip
link, then links, by Tab and Enter); the language switch; an axe-core scan of
every page with no serious or critical violation (WCAG 2.x A and AA rules).
"""
import json
import os
import unittest
import urllib.request

from axe_core_python.selenium import Axe
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ.get("ALLOT_URL", "http://127.0.0.1:8080")
PAGES = ["/", "/campaigns/demo", "/campaigns/demo/sites/pharmacy-1", "/campaigns/nobody", "/language/zh-Hans?next=/campaigns/demo"]


def cn_resident_id(serial):
    """A valid GB 11643 number (born 1990-01-01) for the demo campaign."""
    digits = f"11010119900101{serial % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return digits + "10X98765432"[sum(int(d) * w for d, w in zip(digits, weights)) % 11]


def book(serial, slot="pharmacy-1-h8"):
    """A reservation made through the API, as any client would."""
    body = json.dumps({"citizen_id": cn_resident_id(serial), "slot_id": slot}).encode()
    request = urllib.request.Request(BASE + "/v1/campaigns/demo/reservations", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def heading_becomes(driver, text):
    """Waits (a key press's navigation is not awaited by Selenium) for the page's h1."""
    WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.TAG_NAME, "h1").text == text)


def browser(width=1000, height=900, javascript=True, language="en-GB"):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", f"--lang={language}"):
        options.add_argument(argument)
    preferences = {"intl.accept_languages": language}
    if not javascript:
        preferences["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", preferences)
    service = webdriver.ChromeService(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


class CitizenPages(unittest.TestCase):
    def browse_to_a_site(self, driver):
        driver.get(BASE + "/")
        self.assertEqual(driver.find_element(By.TAG_NAME, "h1").text, "Book a place")
        driver.find_element(By.LINK_TEXT, "Masks, demo week").click()
        self.assertTrue(driver.current_url.endswith("/campaigns/demo"))
        driver.find_element(By.LINK_TEXT, "Pharmacy 1").click()
        self.assertTrue(driver.current_url.endswith("/campaigns/demo/sites/pharmacy-1"))
        rows = driver.find_elements(By.CSS_SELECTOR, "table.slots tbody tr")
        self.assertGreater(len(rows), 0)
        self.assertIn("places left", rows[0].text)

    def test_browse_with_javascript(self):
        driver = browser()
        try:
            self.browse_to_a_site(driver)
        finally:
            driver.quit()

    def test_browse_without_javascript(self):
        driver = browser(javascript=False)
        try:
            self.browse_to_a_site(driver)
        finally:
            driver.quit()

    def test_320_px_wide_needs_no_sideways_scrolling(self):
        booked = book(4003)
        driver = browser(width=320, height=800)
        try:
            # Headless Chrome keeps windows at least 500 px wide: the
            # viewport is set as a phone's, through the DevTools protocol.
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": 320, "height": 800, "deviceScaleFactor": 2, "mobile": True})
            for path in PAGES + ["/reservations/" + booked["id"], "/reservations/" + booked["id"] + "/cancel"]:
                driver.get(BASE + path)
                driver.delete_all_cookies()  # the language switch's, for the pages after it
                self.assertEqual(driver.execute_script("return window.innerWidth"), 320, "the window is really 320 px wide")
                overflow = driver.execute_script(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
                self.assertLessEqual(overflow, 0, path)
        finally:
            driver.quit()

    def test_keyboard_only(self):
        driver = browser()
        try:
            driver.get(BASE + "/")
            body = driver.find_element(By.TAG_NAME, "body")
            body.send_keys(Keys.TAB)
            skip = driver.switch_to.active_element
            self.assertEqual(skip.text, "Skip to main content")
            self.assertTrue(skip.is_displayed(), "the skip link shows when focused")
            skip.send_keys(Keys.ENTER)
            # From the main content, the next Tab reaches the first campaign.
            driver.switch_to.active_element.send_keys(Keys.TAB)
            link = driver.switch_to.active_element
            self.assertEqual(link.text, "Masks, demo week")
            link.send_keys(Keys.ENTER)
            heading_becomes(driver, "Masks, demo week")
            self.assertTrue(driver.current_url.endswith("/campaigns/demo"))
        finally:
            driver.quit()

    def test_language_by_browser_and_by_switch(self):
        driver = browser(language="zh-CN")
        try:
            driver.get(BASE + "/campaigns/demo")
            self.assertEqual(driver.find_element(By.TAG_NAME, "html").get_attribute("lang"), "zh-Hans")
            driver.find_element(By.LINK_TEXT, "English").click()
            self.assertTrue(driver.current_url.endswith("/campaigns/demo"))
            self.assertEqual(driver.find_element(By.TAG_NAME, "html").get_attribute("lang"), "en")
        finally:
            driver.quit()

    def test_cancel_a_booking_by_keyboard_with_a_confirm_step(self):
        reservation = book(4001)
        driver = browser(javascript=False)
        try:
            driver.get(BASE + "/reservations/" + reservation["id"])
            self.assertEqual(driver.find_element(By.TAG_NAME, "h1").text, "Your place is booked")
            self.assertEqual(driver.find_element(By.CSS_SELECTOR, ".code").text, reservation["code"])
            driver.find_element(By.LINK_TEXT, "Cancel this booking").send_keys(Keys.ENTER)
            heading_becomes(driver, "Cancel this booking?")
            driver.find_element(By.CSS_SELECTOR, "button.warning").send_keys(Keys.ENTER)
            heading_becomes(driver, "This booking is cancelled")
            self.assertTrue(driver.current_url.endswith("/reservations/" + reservation["id"]))
            # A reload of the result books nothing and cancels nothing: it is a GET.
            driver.refresh()
            self.assertEqual(driver.find_element(By.TAG_NAME, "h1").text, "This booking is cancelled")
        finally:
            driver.quit()

    def test_no_serious_accessibility_violation(self):
        axe = Axe()
        booked = book(4002)
        pages = PAGES + ["/reservations/" + booked["id"], "/reservations/" + booked["id"] + "/cancel"]
        for language in ("en-GB", "zh-CN"):
            driver = browser(language=language)
            try:
                for path in pages:
                    driver.get(BASE + path)
                    driver.delete_all_cookies()  # the language switch's: the next page in this pass's language
                    result = axe.run(driver, options={"runOnly": {"type": "tag", "values": [
                        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
                    bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
                           for v in result["violations"] if v["impact"] in ("serious", "critical")]
                    self.assertEqual(bad, [], f"{language} {path}")
            finally:
                driver.quit()


if __name__ == "__main__":
    unittest.main()
