"""Booking from the citizen pages in Chromium (scripts/browser-tests.sh).

A full booking from / to the confirmation, then its cancel, without
JavaScript; errors summarised and linked to their field; every refusal's
page (slot full with other times, the citizen's limit, not open yet, too many
attempts, the service busy); a double submit books once; the booking pages at
320 px; an axe-core scan of each.
"""
import os
import sys
import unittest
from datetime import datetime, timedelta, timezone

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(__file__))
from helpers import (BASE, admin, book, browser, call, cn_resident_id, heading, heading_becomes,  # noqa: E402
                     make_campaign, redis_pause, redis_resume, screenshot, serious_violations, title_starts)


def choose_time(driver, campaign, site, slot):
    """From a site's page: a time, then Continue, to the id form."""
    driver.get(f"{BASE}/campaigns/{campaign}/sites/{site}")
    driver.find_element(By.CSS_SELECTOR, f"label[for='slot-{slot}']").click()
    driver.find_element(By.XPATH, "//button[text()='Continue']").click()
    heading_becomes(driver, "What is your id number?")


def answer_id(driver, citizen_id):
    """The id form, filled and sent, to check your answers."""
    field = driver.find_element(By.ID, "citizen-id")
    field.clear()
    field.send_keys(citizen_id)
    driver.find_element(By.XPATH, "//button[text()='Continue']").click()


def press_book(driver):
    driver.find_element(By.ID, "book-button").click()


class Booking(unittest.TestCase):
    def assert_accessible(self, driver, what):
        self.assertEqual(serious_violations(driver), [], what)

    def test_a_full_booking_then_its_cancel_without_javascript(self):
        citizen = cn_resident_id(101)
        driver = browser(javascript=False)
        try:
            driver.get(BASE + "/")
            driver.find_element(By.LINK_TEXT, "Masks, demo week").click()
            heading_becomes(driver, "Masks, demo week")
            driver.find_element(By.LINK_TEXT, "Pharmacy 2").click()
            heading_becomes(driver, "Pharmacy 2")
            screenshot(driver, "site")
            driver.find_element(By.CSS_SELECTOR, "label[for='slot-pharmacy-2-h9']").click()
            driver.find_element(By.XPATH, "//button[text()='Continue']").click()
            heading_becomes(driver, "What is your id number?")
            self.assertIn("18 characters", driver.find_element(By.ID, "citizen-id-hint").text)
            screenshot(driver, "book-id")
            answer_id(driver, citizen)
            heading_becomes(driver, "Check your answers before booking")
            self.assertIn("11••••••••••••••", driver.page_source)
            self.assertNotIn(citizen, driver.page_source)
            self.assertNotIn(citizen[:10], driver.current_url)
            screenshot(driver, "book-check")
            press_book(driver)
            heading_becomes(driver, "Your place is booked")
            self.assertIn("/reservations/", driver.current_url)
            self.assertNotIn(citizen, driver.page_source)
            reservation_id = driver.current_url.rsplit("/", 1)[1]
            self.assertIn(f"/reservations/{reservation_id}", driver.find_element(By.TAG_NAME, "main").text)
            self.assertEqual(call("GET", f"/v1/reservations/{reservation_id}")[1]["slot_id"], "pharmacy-2-h9")
            screenshot(driver, "book-confirmation")
            # A reload is a GET of the reservation: it books nothing more.
            driver.refresh()
            self.assertEqual(heading(driver), "Your place is booked")
            driver.find_element(By.LINK_TEXT, "Cancel this booking").click()
            heading_becomes(driver, "Cancel this booking?")
            driver.find_element(By.CSS_SELECTOR, "button.warning").click()
            heading_becomes(driver, "This booking is cancelled")
            self.assertEqual(call("GET", f"/v1/reservations/{reservation_id}")[1]["status"], "cancelled")
        finally:
            driver.quit()

    def test_the_booking_pages_are_accessible(self):
        driver = browser()
        try:
            driver.get(BASE + "/campaigns/demo/sites/pharmacy-2")
            self.assert_accessible(driver, "site page")
            choose_time(driver, "demo", "pharmacy-2", "pharmacy-2-h10")
            self.assert_accessible(driver, "id form")
            answer_id(driver, cn_resident_id(105))
            heading_becomes(driver, "Check your answers before booking")
            self.assert_accessible(driver, "check your answers")
            press_book(driver)
            heading_becomes(driver, "Your place is booked")
            self.assert_accessible(driver, "confirmation")
        finally:
            driver.quit()

    def test_by_keyboard_at_320_px(self):
        driver = browser()
        try:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": 320, "height": 800, "deviceScaleFactor": 2, "mobile": True})
            driver.get(BASE + "/campaigns/demo/sites/pharmacy-3")
            # Tab to the first time that has places, Space to choose it, Enter to go on.
            radio = driver.find_element(By.CSS_SELECTOR, "input[name='slot']:not([disabled])")
            radio.send_keys(Keys.SPACE)
            self.assertTrue(radio.is_selected())
            driver.find_element(By.XPATH, "//button[text()='Continue']").send_keys(Keys.ENTER)
            heading_becomes(driver, "What is your id number?")
            # Enter in the field sends the form.
            driver.find_element(By.ID, "citizen-id").send_keys(cn_resident_id(102) + Keys.ENTER)
            heading_becomes(driver, "Check your answers before booking")
            overflow = driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            self.assertLessEqual(overflow, 0, driver.current_url)
            driver.find_element(By.ID, "book-button").send_keys(Keys.ENTER)
            heading_becomes(driver, "Your place is booked")
        finally:
            driver.quit()

    def test_errors_are_summarised_and_linked_to_their_field(self):
        driver = browser()
        try:
            driver.get(BASE + "/campaigns/demo/sites/pharmacy-1")
            driver.find_element(By.XPATH, "//button[text()='Continue']").click()
            title_starts(driver, "Error: ")
            summary = driver.find_element(By.CSS_SELECTOR, ".error-summary")
            self.assertEqual(driver.switch_to.active_element, summary, "the summary takes the focus")
            summary.find_element(By.TAG_NAME, "a").click()
            self.assertEqual(driver.switch_to.active_element.get_attribute("name"), "slot")
            self.assert_accessible(driver, "site page with an error")

            choose_time(driver, "demo", "pharmacy-1", "pharmacy-1-h12")
            answer_id(driver, "110101199001011234")  # the check character is wrong
            title_starts(driver, "Error: What is your id number?")
            self.assertNotIn("110101199001011234", driver.page_source)
            link = driver.find_element(By.CSS_SELECTOR, ".error-summary a")
            self.assertIn("valid resident id number", link.text)
            link.click()
            self.assertEqual(driver.switch_to.active_element.get_attribute("id"), "citizen-id")
            self.assertEqual(driver.find_element(By.ID, "citizen-id").get_attribute("aria-invalid"), "true")
            self.assert_accessible(driver, "id form with an error")
            screenshot(driver, "book-error")
        finally:
            driver.quit()

    def test_slot_full_offers_other_times_and_one_books(self):
        make_campaign("tiny", slots=3, capacity=1)
        driver = browser()
        try:
            choose_time(driver, "tiny", "hall", "s0")
            answer_id(driver, "late-citizen")
            heading_becomes(driver, "Check your answers before booking")
            book(0, slot="s0", campaign="tiny", citizen="early-citizen")  # someone else is quicker
            press_book(driver)
            heading_becomes(driver, "That time is now full")
            self.assertTrue(driver.title.startswith("Error: "))
            self.assertEqual(len(driver.find_elements(By.CSS_SELECTOR, "#slot-s0")), 0)
            self.assert_accessible(driver, "slot full")
            screenshot(driver, "book-slot-full")
            driver.find_element(By.CSS_SELECTOR, "label[for='slot-s2']").click()
            driver.find_element(By.XPATH, "//button[text()='Continue']").click()
            heading_becomes(driver, "Check your answers before booking")
            press_book(driver)
            heading_becomes(driver, "Your place is booked")
            self.assertEqual(call("GET", "/v1/reservations/" + driver.current_url.rsplit("/", 1)[1])[1]["slot_id"], "s2")
        finally:
            driver.quit()

    def test_the_limit_and_not_open_have_their_pages(self):
        citizen = cn_resident_id(103)
        book(103, slot="pharmacy-1-h10")
        driver = browser()
        try:
            choose_time(driver, "demo", "pharmacy-1", "pharmacy-1-h11")
            answer_id(driver, citizen)
            heading_becomes(driver, "Check your answers before booking")
            press_book(driver)
            heading_becomes(driver, "You have booked already")
            self.assertIn("cancel your booking first", driver.find_element(By.TAG_NAME, "main").text)
            self.assert_accessible(driver, "limit reached")

            make_campaign("later", slots=1, capacity=5)
            choose_time(driver, "later", "hall", "s0")
            answer_id(driver, "patient-citizen")
            heading_becomes(driver, "Check your answers before booking")
            opens = (datetime.now(timezone.utc) + timedelta(days=3)).replace(second=0, microsecond=0)
            admin("PATCH", "/v1/admin/campaigns/later", {"opens_at": opens.strftime("%Y-%m-%dT%H:%M:%SZ")})
            press_book(driver)
            heading_becomes(driver, "Booking is not open")
            self.assertIn("Booking opens at " + opens.strftime("%Y-%m-%d %H:%M UTC"), driver.find_element(By.TAG_NAME, "main").text)
            self.assert_accessible(driver, "not open")
        finally:
            driver.quit()

    def test_too_many_attempts_keeps_the_form(self):
        make_campaign("busy", slots=1, capacity=20, limit=5)
        admin("PUT", "/v1/admin/campaigns/busy/rate-limits", {"ip": {"rate": 0.001, "burst": 1}})
        book(0, slot="s0", campaign="busy", citizen="first-in")  # this address's one attempt
        driver = browser()
        try:
            choose_time(driver, "busy", "hall", "s0")
            answer_id(driver, "second-in")
            heading_becomes(driver, "Check your answers before booking")
            press_book(driver)
            title_starts(driver, "Error: Check your answers")
            message = driver.find_element(By.CSS_SELECTOR, ".error-summary a").text
            self.assertRegex(message, r"Wait \d+ seconds")
            self.assert_accessible(driver, "rate limited")
            screenshot(driver, "book-wait")
            admin("PUT", "/v1/admin/campaigns/busy/rate-limits", {})
            press_book(driver)  # the same form, pressed again
            heading_becomes(driver, "Your place is booked")
        finally:
            driver.quit()

    def test_service_busy_then_pressed_again_books_once(self):
        driver = browser()
        try:
            choose_time(driver, "demo", "pharmacy-2", "pharmacy-2-h15")
            answer_id(driver, cn_resident_id(104))
            heading_becomes(driver, "Check your answers before booking")
            redis_pause()
            try:
                press_book(driver)
                title_starts(driver, "Error: Check your answers", timeout=30)
                self.assertIn("Your place is not booked yet", driver.find_element(By.CSS_SELECTOR, ".error-summary").text)
            finally:
                redis_resume()
            # Whether or not Redis ran the paused attempt, pressing again gives
            # the one booking: the form's idempotency key replays it.
            press_book(driver)
            heading_becomes(driver, "Your place is booked")
            status, answer = call("POST", "/v1/campaigns/demo/reservations",
                                  {"citizen_id": cn_resident_id(104), "slot_id": "pharmacy-2-h16"})
            self.assertEqual((status, answer["code"]), (409, "citizen_limit_reached"))
        finally:
            driver.quit()

    def test_a_double_submit_books_once(self):
        make_campaign("twice", slots=1, capacity=10, limit=5)
        driver = browser()
        try:
            choose_time(driver, "twice", "hall", "s0")
            answer_id(driver, "quick-fingers")
            heading_becomes(driver, "Check your answers before booking")
            # The same form sent twice more, each into a window of its own,
            # as a second press or a reload after a lost answer does.
            check = driver.current_window_handle
            driver.execute_script("""
                const form = document.querySelector("form[action$='/book/confirm']");
                form.target = "_blank"; form.submit(); form.submit(); form.removeAttribute("target");
            """)
            WebDriverWait(driver, 10).until(lambda d: len(d.window_handles) == 3)
            locations = []
            for handle in driver.window_handles:
                if handle != check:
                    driver.switch_to.window(handle)
                    heading_becomes(driver, "Your place is booked")
                    locations.append(driver.current_url)
                    driver.close()
            driver.switch_to.window(check)
            self.assertEqual(len(set(locations)), 1, locations)
            self.assertIn("/reservations/", locations[0])
            # Then a real double click on the button.
            ActionChains(driver).double_click(driver.find_element(By.ID, "book-button")).perform()
            heading_becomes(driver, "Your place is booked")
            self.assertEqual(driver.current_url, locations[0])
            self.assertEqual(admin("GET", "/v1/admin/campaigns/twice/stats")["confirmed"], 1)
        finally:
            driver.quit()


if __name__ == "__main__":
    unittest.main()
