"""Campaigns: the two-step wizard (predefined and custom follow-ups, a validation error on its
field, a test follow-up, A/B settings), walked with the mouse and with the keyboard only; the
list with its filters and actions."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.helpers import SignedIn

CUSTOM_HTML = (
    "<p>Hello {{ first_name }}, your cart is waiting: "
    "<a href='{{ recovery_url }}'>back to it</a></p>"
)


def test_wizard_creates_an_ab_campaign_with_predefined_and_custom_follow_ups(
    page_signed_in: SignedIn, shot: Any, unlabelled: Any
) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    page.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_test_id("empty")).to_contain_text("No campaigns yet")
    page.get_by_role("link", name="Create your first campaign").click()

    # Step 1: the vague-name advice follows the typing, as the API would warn.
    name = page.get_by_label("Name", exact=True)
    name.fill("promo1")
    expect(page.get_by_test_id("name-advice")).to_contain_text("says little about the campaign")
    name.fill("Abandoned carts DE - 10% off")
    expect(page.get_by_test_id("name-advice")).to_have_text("")
    page.get_by_label("Description").fill("Carts left in Germany")
    page.get_by_label("Source").select_option("abandoned_checkout")
    page.get_by_label("Languages").fill("de, en")
    page.get_by_label("Countries").fill("DE")
    assert unlabelled(page) == []
    shot(page, "wizard-step1")
    page.get_by_role("button", name="Save draft and continue").click()

    # Step 2: a predefined template, previewed for a sample lead (the draft is saved).
    expect(page.get_by_test_id("wizard-step2")).to_be_visible()
    first = page.get_by_test_id("step-0-0")
    first.get_by_label("Send after capture").fill("30")
    first.get_by_label("Unit").select_option("M")
    first.get_by_label("Template", exact=True).select_option("abandoned_checkout/1")
    first.get_by_role("button", name="Preview for a sample lead").click()
    expect(first.get_by_test_id("preview-subject")).not_to_be_empty()

    # A custom follow-up with a template error: shown next to its field, then fixed.
    page.get_by_test_id("add-step-0").click()
    second = page.get_by_test_id("step-0-1")
    second.get_by_role("radio", name="Custom").check()
    second.get_by_label("Subject").fill("Still thinking, {{ first_name }}?")
    second.get_by_label("HTML").fill("<p>Hello {{ first_name </p>")
    second.get_by_label("Plain text").fill("Hello {{ first_name }}, your cart is waiting.")
    page.get_by_role("button", name="Save campaign").click()
    error = page.locator('[data-error-for="variants[0].steps[1].html"]')
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    expect(second.get_by_label("HTML")).to_have_attribute("aria-invalid", "true")
    shot(page, "wizard-validation-error")
    second.get_by_label("HTML").fill(CUSTOM_HTML)
    expect(error).to_be_hidden()  # the message goes once the field is edited
    expect(
        second.get_by_test_id("live-preview").frame_locator("iframe").get_by_text("back to it")
    ).to_be_visible()

    # A test follow-up: a second set, with its own weight, and the A/B settings.
    page.get_by_role("button", name="Add test follow-up").click()
    variant_b = page.get_by_test_id("variant-1")
    expect(variant_b).to_be_visible()
    variant_b.get_by_label("Weight").fill("2")
    page.get_by_label("Threshold").fill("20")
    page.get_by_test_id("ab-after-keep_best").check()
    page.get_by_label("Activate the campaign when saved").check()
    assert unlabelled(page) == []
    shot(page, "wizard-step2")
    page.get_by_role("button", name="Save campaign").click()

    expect(page.get_by_test_id("campaign-name")).to_have_text("Abandoned carts DE - 10% off")
    expect(page.get_by_test_id("campaign-status")).to_have_text("active")
    shot(page, "campaign")
    (campaign,) = account.call("GET", "/v1/campaigns")["items"]
    assert campaign["status"] == "active"
    assert campaign["source"] == "abandoned_checkout"
    assert campaign["languages"] == ["de", "en"] and campaign["countries"] == ["DE"]
    assert [v["weight"] for v in campaign["variants"]] == [1, 2]
    for variant in campaign["variants"]:
        first_step, second_step = variant["steps"]
        assert first_step["template"] == "abandoned_checkout/1"
        assert first_step["delay"] in ("PT30M", "PT1800S")
        assert second_step["template"] is None
        assert second_step["html"] == CUSTOM_HTML
    assert campaign["ab_test"]["criterion"] == "conversions"
    assert campaign["ab_test"]["keep_best"] is True
    assert float(campaign["ab_test"]["threshold"]) == 20


def test_wizard_with_the_keyboard_only(page_signed_in: SignedIn) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    page.goto("/dashboard/#/campaigns/new")
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    page.keyboard.type("Trial reminders EN")

    def tab_to(testid: str, limit: int = 40) -> None:
        for _ in range(limit):
            if (
                page.evaluate(
                    "() => document.activeElement && document.activeElement.dataset.testid"
                )
                == testid
            ):
                return
            page.keyboard.press("Tab")
        raise AssertionError(f"Tab never reached {testid}")

    tab_to("wizard-next")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("wizard-step2")).to_be_visible()
    tab_to("template-select")
    page.keyboard.press("ArrowDown")  # the first template that fits
    tab_to("wizard-save")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("campaign-name")).to_have_text("Trial reminders EN")
    (campaign,) = account.call("GET", "/v1/campaigns")["items"]
    assert campaign["status"] == "inactive"  # saved as a draft: nothing activates by itself
    assert campaign["variants"][0]["steps"][0]["template"]


def test_list_filters_and_actions(page_signed_in: SignedIn, shot: Any, unlabelled: Any) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    trial = account.campaign(
        name="Trial ending soon",
        source="trial",
        status="inactive",
        variants=[{"name": "A", "steps": [{"delay": "PT1H", "template": "trial/1"}]}],
    )
    carts = account.campaign(name="Abandoned carts EU")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/dashboard/#/campaigns")
    rows = page.get_by_test_id("campaign-list").locator("tbody tr")
    expect(rows).to_have_count(2)
    assert unlabelled(page) == []
    shot(page, "campaigns")
    page.get_by_label("Source").select_option("trial")
    expect(rows).to_have_count(1)
    page.get_by_label("Source").select_option("")

    trial_row = page.get_by_test_id(f"campaign-row-{trial['id']}")
    trial_row.get_by_role("button", name="Activate Trial ending soon").click()
    expect(trial_row.get_by_test_id("campaign-status")).to_have_text("active")
    assert account.call("GET", f"/v1/campaigns/{trial['id']}")["status"] == "active"
    trial_row.get_by_role("button", name="Deactivate Trial ending soon").click()
    expect(trial_row.get_by_test_id("campaign-status")).to_have_text("inactive")

    carts_row = page.get_by_test_id(f"campaign-row-{carts['id']}")
    carts_row.get_by_role("button", name="Backfill Abandoned carts EU").click()
    expect(page.get_by_test_id("toast")).to_contain_text("Backfill")
    carts_row.get_by_role("button", name="Archive Abandoned carts EU").click()
    expect(rows).to_have_count(1)
    assert account.call("GET", f"/v1/campaigns/{carts['id']}")["archived_at"] is not None
    page.get_by_label("Status").select_option("archived")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Abandoned carts EU")


def test_edit_changes_step_one_and_keeps_the_follow_ups(page_signed_in: SignedIn) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    campaign = account.campaign(name="Carts older wording", status="inactive")
    page.goto(f"/dashboard/#/campaigns/{campaign['id']}")
    page.get_by_role("link", name="Edit Carts older wording").click()
    name = page.get_by_label("Name", exact=True)
    expect(name).to_have_value("Carts older wording")
    name.fill("Carts new wording")
    page.get_by_role("button", name="Save draft and continue").click()
    expect(page.get_by_test_id("template-select")).to_have_value("abandoned_checkout/1")
    page.get_by_role("button", name="Save campaign").click()
    expect(page.get_by_test_id("campaign-name")).to_have_text("Carts new wording")
    saved = account.call("GET", f"/v1/campaigns/{campaign['id']}")
    assert saved["name"] == "Carts new wording" and saved["status"] == "inactive"
    (variant,) = saved["variants"]
    assert variant["id"] == campaign["variants"][0]["id"]
    assert [s["template"] for s in variant["steps"]] == ["abandoned_checkout/1"]
