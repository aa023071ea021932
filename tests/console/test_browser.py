"""The console in a real browser: an operator logs in, freezes an account through the action,
sees it marked frozen, and a screenshot of the dashboard is saved to var/screenshots/.

Headless Chromium from Debian's `chromium` and `chromium-driver` packages, driven by Selenium
against Django's live server. Without those binaries the test is skipped, unless
REQUIRE_BROWSER=1 (set by .ci/run), which turns their absence into a failure.

The live server answers from another thread, so the test needs a transactional database, which
Django empties after the test: with TRUNCATE on PostgreSQL (row triggers do not see it) and with
DELETE on SQLite, where the event tables' append-only triggers refuse it. Rather than marking the
test PostgreSQL-only, which would leave the embedded default (the README's `make test`) without a
browser test, `_event_rows_cleared_for_the_flush` empties the event tables itself on SQLite just
before the flush: it lifts each trigger, deletes, and reinstates the trigger exactly as it was,
all within the teardown, so no other test ever sees a table without its triggers.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import connection

from apps.accounts.models import Account, AccountEvent
from apps.accounts.services import account_open
from apps.core.models import event_models
from apps.core.seeding import seed_reference_data
from apps.payments.services import deposit_create
from tests.factories import StaffFactory, UserFactory

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
WAIT_SECONDS = 30

pytestmark = pytest.mark.django_db(transaction=True)


def _browser_missing() -> str | None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if not missing:
        return None
    return (
        f"needs Debian's chromium and chromium-driver: {', '.join(missing)} not found "
        "(apt-get install chromium chromium-driver)"
    )


@pytest.fixture
def browser(tmp_path, monkeypatch):
    missing = _browser_missing()
    if missing:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but the test {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Both binaries are given explicitly; Selenium Manager must never download a browser.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1440,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def _event_rows_cleared_for_the_flush(transactional_db):
    """Set up after the transactional database, so this teardown runs before its flush."""
    yield
    if connection.vendor != "sqlite":
        return  # PostgreSQL flushes with TRUNCATE, which the row triggers do not fire on
    with connection.cursor() as cursor:
        for model in event_models():
            table = model._meta.db_table
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [table],
            )
            triggers = cursor.fetchall()
            for name, _ in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
            cursor.execute(f'DELETE FROM "{table}"')
            for _, sql in triggers:
                cursor.execute(sql)
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [table],
            )
            assert sorted(cursor.fetchall()) == sorted(triggers), table


def _operator_group() -> Group:
    """The operator role as its migrations grant it. A transactional test before this one may
    have flushed the rows the data migrations wrote, so the group is made again if need be."""
    group, _ = Group.objects.get_or_create(name="operator")
    for migration in ("0003_staff_groups", "0004_console_permissions"):
        roles = importlib.import_module(f"apps.users.migrations.{migration}").ROLES
        for code in roles["operator"]:
            app_label, codename = code.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
    return group


def test_an_operator_freezes_an_account_in_the_browser(
    browser, live_server, _event_rows_cleared_for_the_flush
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    seed_reference_data()
    operator = StaffFactory(email="operator@example.com", name="Olga Operator")
    operator.groups.add(_operator_group())
    customer = UserFactory(email="ada@example.com", name="Ada Customer")
    account = account_open(name="Ada's everyday", owner_uuid=customer.uuid)
    deposit_create(account_uuid=account.uuid, amount=125_000, asset_code="USD")
    other = account_open(name="Ada's savings", owner_uuid=customer.uuid)
    deposit_create(account_uuid=other.uuid, amount=9_900, asset_code="EUR")
    wait = WebDriverWait(browser, WAIT_SECONDS)

    # Log in through the console's own login form.
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys(operator.email)
    browser.find_element(By.NAME, "password").send_keys("correct-horse-battery")
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait.until(ec.url_to_be(f"{live_server.url}/admin/"))

    # The accounts list: tick the account, choose Freeze, run it.
    browser.get(f"{live_server.url}/admin/accounts/account/")
    checkbox = wait.until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, f'input.action-select[value="{account.uuid}"]')
        )
    )
    browser.execute_script("arguments[0].click();", checkbox)  # styled checkbox: click it by JS
    wait.until(ec.visibility_of_element_located((By.NAME, "action")))
    Select(browser.find_element(By.NAME, "action")).select_by_value("freeze")
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, 'button[name="index"]'))).click()

    # The confirmation page asks for the reason.
    reason = wait.until(ec.visibility_of_element_located((By.NAME, "reason")))
    assert str(account.uuid) in browser.page_source
    reason.send_keys("Card reported stolen by the customer")
    browser.find_element(By.CSS_SELECTOR, 'button[name="apply"]').click()

    # Back on the list: the message, and the account's row marked frozen; the other is not.
    wait.until(ec.url_to_be(f"{live_server.url}/admin/accounts/account/"))
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Frozen: 1"))

    def frozen_mark(uuid) -> str:
        row = browser.find_element(
            By.XPATH, f'//tr[.//input[@name="_selected_action" and @value="{uuid}"]]'
        )
        return row.find_element(By.CSS_SELECTOR, "td.field-frozen [title]").get_attribute("title")

    assert frozen_mark(account.uuid) == "True"
    assert frozen_mark(other.uuid) == "False"
    assert Account.objects.get(uuid=account.uuid).frozen
    frozen_event = AccountEvent.objects.get(
        aggregate_uuid=account.uuid, event_type="accounts.AccountFrozen"
    )
    assert frozen_event.event_data["reason"] == "Card reported stolen by the customer"
    assert frozen_event.meta_data["actor"] == {"type": "staff", "id": str(operator.uuid)}

    # The dashboard counts the frozen account; keep a screenshot of it.
    browser.get(f"{live_server.url}/admin/")
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Frozen accounts"))
    wait.until(ec.presence_of_element_located((By.TAG_NAME, "canvas")))  # the volume chart
    kpis = {
        card.find_element(By.CSS_SELECTOR, "div.text-sm").text: card.find_element(
            By.CSS_SELECTOR, "div.text-2xl"
        ).text
        for card in browser.find_elements(By.CSS_SELECTOR, "div.grid > div.rounded-default")
        if card.find_elements(By.CSS_SELECTOR, "div.text-2xl")
    }
    assert kpis["Frozen accounts"] == "1"
    assert kpis["Customer accounts"] == "2"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / "dashboard.png"
    target.unlink(missing_ok=True)
    assert browser.save_screenshot(str(target))
    assert target.stat().st_size > 10_000
