"""The operator dashboard in Chromium (scripts/browser-tests.sh): signing in
with a token, a campaign's figures changing live as citizens book, a
capacity change seen on the page, a refused value, pause and open, the audit
trail verified, signing out; an axe-core scan of each page.
"""
import os
import sys
import threading
import time
import unittest

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

sys.path.insert(0, os.path.dirname(__file__))
from helpers import (ADMIN_TOKEN, BASE, book, browser, call, heading, heading_becomes, screenshot,  # noqa: E402
                     serious_violations, title_starts, wait_for)


def site_row(driver, site):
    """A site's row of the places table: (taken, left, capacity)."""
    for row in driver.find_elements(By.CSS_SELECTOR, "table.slots tbody tr"):
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        if cells and cells[0] == site:
            return tuple(int(value) for value in cells[1:])
    raise AssertionError(f"no row for {site}")


def sign_in(driver, token=ADMIN_TOKEN):
    driver.get(BASE + "/ops/")
    heading_becomes(driver, "Sign in")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.XPATH, "//button[text()='Sign in']").click()


class Dashboard(unittest.TestCase):
    def assert_accessible(self, driver, what):
        self.assertEqual(serious_violations(driver), [], what)

    def test_sign_in_watch_change_capacity_and_sign_out(self):
        driver = browser()
        try:
            sign_in(driver, token="not-a-token")
            title_starts(driver, "Error: Sign in")
            self.assertIn("The token is not valid", driver.find_element(By.CSS_SELECTOR, ".error-summary").text)
            self.assert_accessible(driver, "sign-in with an error")
            sign_in(driver)
            heading_becomes(driver, "Campaigns")
            cookie = driver.get_cookie("allot_ops")
            self.assertTrue(cookie["httpOnly"])
            self.assertEqual(cookie["sameSite"], "Strict")
            self.assertNotIn(ADMIN_TOKEN, cookie["value"])
            self.assert_accessible(driver, "campaigns")
            driver.find_element(By.LINK_TEXT, "Masks, demo week").click()
            heading_becomes(driver, "Masks, demo week")
            self.assert_accessible(driver, "campaign")

            # Live: citizens book, a few a second, and the page (reloading
            # itself) shows it with no one touching it.
            taken, left, capacity = site_row(driver, "Pharmacy 1")
            booking = threading.Thread(target=lambda: [(book(serial, slot="pharmacy-1-h9"), time.sleep(0.4))
                                                        for serial in range(201, 231)])
            booking.start()
            try:
                wait_for(driver, timeout=15, condition=lambda d: site_row(d, "Pharmacy 1")[0] >= taken + 3)
                rate = "//dt[text()='Reservations per second']/../dd"
                wait_for(driver, timeout=15, condition=lambda d: d.find_element(By.XPATH, rate).text not in ("–", "0"))
            finally:
                booking.join()
            # Places taken, and a line per refusal reason the stats count
            # (slot full, citizen limit, rate limited, not open, not eligible, invalid).
            self.assertEqual(len(driver.find_elements(By.CSS_SELECTOR, "svg.chart polyline")), 7)
            screenshot(driver, "dashboard")

            # A capacity change, through the form (on a page of its own, which
            # does not reload under typing), seen on the live page and by citizens.
            driver.find_element(By.PARTIAL_LINK_TEXT, "Change this campaign").click()
            heading_becomes(driver, "Change Masks, demo week")
            self.assert_accessible(driver, "change page")
            screenshot(driver, "dashboard-change")
            _, _, capacity = site_row(driver, "Pharmacy 3")
            Select(driver.find_element(By.ID, "slot")).select_by_value("pharmacy-3-h17")
            driver.find_element(By.ID, "capacity").send_keys("150")
            driver.find_element(By.XPATH, "//button[text()='Set capacity']").click()
            wait_for(driver, timeout=10, condition=lambda d: "Saved" in d.find_element(By.TAG_NAME, "main").text)
            self.assertEqual(site_row(driver, "Pharmacy 3")[2], capacity + 50)
            slots = call("GET", "/v1/campaigns/demo/slots")[1]["slots"]
            self.assertEqual(next(s for s in slots if s["id"] == "pharmacy-3-h17")["capacity"], 150)

            # A value the API refuses: nothing changes, the error links to the field.
            driver.get(BASE + "/ops/campaigns/demo/change")
            driver.find_element(By.ID, "capacity").send_keys("lots")
            driver.find_element(By.XPATH, "//button[text()='Set capacity']").click()
            title_starts(driver, "Error: ")
            driver.find_element(By.CSS_SELECTOR, ".error-summary a").click()
            self.assertEqual(driver.switch_to.active_element.get_attribute("id"), "capacity")
            self.assertEqual(site_row(driver, "Pharmacy 3")[2], capacity + 50)

            # Pause, then open again.
            driver.find_element(By.ID, "status-button").click()
            wait_for(driver, timeout=10, condition=lambda d: "Paused" in d.find_element(By.CSS_SELECTOR, "main .tag").text)
            self.assertEqual(call("GET", "/v1/campaigns/demo")[1]["status"], "paused")
            driver.get(BASE + "/ops/campaigns/demo/change")
            driver.find_element(By.ID, "status-button").click()
            wait_for(driver, timeout=10, condition=lambda d: d.find_element(By.CSS_SELECTOR, "main .tag").text == "Open")

            # The audit trail has the changes, by this token, and verifies.
            driver.find_element(By.LINK_TEXT, "Audit trail").click()
            heading_becomes(driver, "Audit trail")
            self.assertIn("token:bootstrap", driver.find_element(By.TAG_NAME, "table").text)
            driver.find_element(By.XPATH, "//button[text()='Verify the whole chain']").click()
            wait_for(driver, timeout=20, condition=lambda d: "Verified: Audit chain intact" in d.find_element(By.TAG_NAME, "main").text)
            self.assert_accessible(driver, "audit")
            screenshot(driver, "dashboard-audit")

            driver.find_element(By.XPATH, "//button[starts-with(text(), 'Sign out')]").click()
            heading_becomes(driver, "Sign in")
            self.assertIsNone(driver.get_cookie("allot_ops"))
            driver.get(BASE + "/ops/campaigns/demo")
            self.assertEqual(heading(driver), "Sign in")
        finally:
            driver.quit()


if __name__ == "__main__":
    unittest.main()
