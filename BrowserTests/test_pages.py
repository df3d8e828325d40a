"""The citizen pages in Chromium (scripts/browser-tests.sh starts the server
with its demo campaign and sets ALLOT_URL).

From / to a site's times by links, with JavaScript and without; a 320 px
wide screen; keyboard only (the skip link, then links, by Tab and Enter); the
language switch; a reservation's page and its cancel; an axe-core scan of
every page with no serious or critical violation (WCAG 2.x A and AA rules).
Booking is in test_booking.py, the operator dashboard in test_dashboard.py.
"""
import os
import sys
import unittest

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

sys.path.insert(0, os.path.dirname(__file__))
from helpers import BASE, book, browser, heading_becomes, screenshot, serious_violations  # noqa: E402

PAGES = ["/", "/campaigns/demo", "/campaigns/demo/sites/pharmacy-1", "/campaigns/nobody", "/language/zh-Hans?next=/campaigns/demo"]


class CitizenPages(unittest.TestCase):
    def browse_to_a_site(self, driver):
        driver.get(BASE + "/")
        self.assertEqual(driver.find_element(By.TAG_NAME, "h1").text, "Book a place")
        driver.find_element(By.LINK_TEXT, "Masks, demo week").click()
        self.assertTrue(driver.current_url.endswith("/campaigns/demo"))
        driver.find_element(By.LINK_TEXT, "Pharmacy 1").click()
        self.assertTrue(driver.current_url.endswith("/campaigns/demo/sites/pharmacy-1"))
        choices = driver.find_elements(By.CSS_SELECTOR, ".choice")
        self.assertGreater(len(choices), 0)
        self.assertIn("places left", choices[0].text)

    def test_browse_with_javascript(self):
        driver = browser()
        try:
            self.browse_to_a_site(driver)
            for path, name in (("/", "home"), ("/campaigns/demo", "campaign")):
                driver.get(BASE + path)
                screenshot(driver, name)
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
                self.assertEqual(driver.execute_script("return window.innerWidth"), 320, f"{path}: the window is really 320 px wide")
                overflow = driver.execute_script(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
                self.assertLessEqual(overflow, 0, path)
                if path == "/campaigns/demo/sites/pharmacy-1":
                    screenshot(driver, "site-320", resize=False)
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
            screenshot(driver, "campaign-zh")
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
            screenshot(driver, "reservation")
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
        booked = book(4002)
        pages = PAGES + ["/reservations/" + booked["id"], "/reservations/" + booked["id"] + "/cancel"]
        for language in ("en-GB", "zh-CN"):
            driver = browser(language=language)
            try:
                for path in pages:
                    driver.get(BASE + path)
                    driver.delete_all_cookies()  # the language switch's: the next page in this pass's language
                    self.assertEqual(serious_violations(driver), [], f"{language} {path}")
            finally:
                driver.quit()


if __name__ == "__main__":
    unittest.main()
