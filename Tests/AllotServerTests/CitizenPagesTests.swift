@testable import AllotServer
import Foundation
import Testing

/// The citizen pages against a live server: what they show, in which
/// language, the headers every page carries, and escaping.
@Suite(.serialized) struct CitizenPagesTests {
    @Test func fromTheListToASiteWithPlacesLeft() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("pg", slots: 2, capacity: 1)
        let client = stack.client()
        let home = try client.get("/")
        #expect(home.status == 200)
        #expect(home.header("Content-Type") == "text/html; charset=utf-8")
        #expect(home.header("Content-Security-Policy")?.contains("default-src 'none'") == true)
        #expect(home.header("Content-Security-Policy")?.contains("frame-ancestors 'none'") == true)
        #expect(home.header("X-Content-Type-Options") == "nosniff")
        #expect(home.header("Referrer-Policy") == "same-origin")
        #expect(home.text.contains("<html lang=\"en\">"))
        #expect(home.text.contains("href=\"/campaigns/pg\">Test pg</a>"))
        #expect(!home.text.contains("<script"))

        let campaign = try client.get("/campaigns/pg")
        #expect(campaign.status == 200)
        #expect(campaign.text.contains("href=\"/campaigns/pg/sites/hall\">Hall</a>"))
        #expect(campaign.text.contains("2 places left"))

        #expect(try stack.reserve(client, campaign: "pg", citizen: "ann", slot: "s0").status == 201)
        var site = campaign
        #expect(try waitUntil {
            site = try HTTPClient(port: stack.port).get("/campaigns/pg/sites/hall")
            return site.text.contains(#"<div class="choice full"><input type="radio" name="slot" id="slot-s0" value="s0" disabled>"#)
        })
        #expect(site.status == 200)
        #expect(site.text.contains("2030-01-01 09:00–10:00 UTC"))
        #expect(site.text.contains(" 1 place left"))
        for page in [home, campaign, site] { #expect(page.body.count < 30_000) }
        let css = try client.get("/static/style.css")
        #expect(css.status == 200 && css.header("Content-Type") == "text/css; charset=utf-8")
    }

    @Test func languageByHeaderByCookieAndBySwitch() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("zh", slots: 1, capacity: 3)
        let client = stack.client()
        let chinese = try client.get("/campaigns/zh", headers: ["Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"])
        #expect(chinese.text.contains("<html lang=\"zh-Hans\">"))
        #expect(chinese.text.contains("剩余 3 个名额"))
        #expect(chinese.header("Content-Language") == "zh-Hans")
        let switched = try client.get("/language/en?next=/campaigns/zh")
        #expect(switched.status == 303)
        #expect(switched.header("Location") == "/campaigns/zh")
        let cookie = try #require(switched.header("Set-Cookie"))
        #expect(cookie.hasPrefix("allot_lang=en;"))
        let english = try client.get("/campaigns/zh", headers: ["Accept-Language": "zh-CN", "Cookie": "a=1; allot_lang=en"])
        #expect(english.text.contains("<html lang=\"en\">"))
        // Off-site or odd `next`: home, never elsewhere.
        for next in ["//evil.example/", "https://evil.example/", "/a?b", "/a%0d%0aSet-Cookie:x"] {
            #expect(try client.get("/language/zh-Hans?next=\(next)").header("Location") == "/", "\(next)")
        }
        #expect(try client.get("/language/fr").status == 404)
    }

    @Test func unknownAndDraftCampaignsAreErrorPages() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let created = try stack.admin("POST", "/v1/admin/campaigns", #"{"id":"secret","name":"Secret","status":"draft","id_scheme":"any","per_citizen_limit":1,"opens_at":"2020-01-01T00:00:00Z","closes_at":"2099-01-01T00:00:00Z"}"#)
        #expect(created.status == 201)
        let client = stack.client()
        for path in ["/campaigns/nobody", "/campaigns/secret", "/campaigns/secret/sites/hall"] {
            let page = try client.get(path)
            #expect(page.status == 404, "\(path)")
            #expect(page.header("Content-Type") == "text/html; charset=utf-8")
            #expect(page.text.contains("<title>Error: Page not found"), "\(path)")
            #expect(!page.text.contains("Secret"))
        }
    }

    @Test func whatOperatorsTypeIsEscaped() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("esc", slots: 1, capacity: 3)
        let renamed = try stack.admin("PUT", "/v1/admin/campaigns/esc/sites",
                                      #"{"sites":[{"id":"hall","name":"<script>alert(1)</script>","address":"\"Road\" & 'Lane'"}]}"#)
        #expect(renamed.status == 200)
        let page = try stack.client().get("/campaigns/esc/sites/hall")
        #expect(!page.text.contains("<script>"))
        #expect(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(page.text.contains("&quot;Road&quot; &amp; &#39;Lane&#39;") || page.text.contains("&quot;Road&quot; &amp; &#x27;Lane&#x27;"))
    }

    /// A reservation's page, its cancel with a confirm step (a GET changes
    /// nothing), post/redirect/get, and a second cancel refused.
    @Test func aReservationPageAndItsCancel() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("rp", slots: 1, capacity: 1)
        let client = stack.client()
        let booked = try stack.reserve(client, campaign: "rp", citizen: "citizen-7781", slot: "s0")
        let id = try #require(booked.json["id"] as? String)
        let code = try #require(booked.json["code"] as? String)
        let page = try client.get("/reservations/\(id)")
        #expect(page.status == 200)
        #expect(page.text.contains("Your place is booked"))
        #expect(page.text.contains(code))
        #expect(page.text.contains("Hall") && page.text.contains("2030-01-01 09:00–10:00 UTC"))
        #expect(!page.text.contains("citizen-7781"))
        #expect(page.header("Referrer-Policy") == "same-origin")

        let confirm = try client.get("/reservations/\(id)/cancel")
        #expect(confirm.status == 200)
        #expect(confirm.text.contains("<form method=\"post\" action=\"/reservations/\(id)/cancel\">"))
        #expect(try client.get("/v1/reservations/\(id)").json["status"] as? String == "confirmed")

        let cancelled = try client.request("POST", "/reservations/\(id)/cancel")
        #expect(cancelled.status == 303)
        #expect(cancelled.header("Location") == "/reservations/\(id)")
        #expect(try client.get("/v1/reservations/\(id)").json["status"] as? String == "cancelled")
        let after = try client.get("/reservations/\(id)")
        #expect(after.text.contains("This booking is cancelled"))
        #expect(!after.text.contains(code))
        // The place is back: another citizen books it.
        #expect(try stack.reserve(client, campaign: "rp", citizen: "citizen-9", slot: "s0").status == 201)

        let again = try client.request("POST", "/reservations/\(id)/cancel")
        #expect(again.status == 409)
        #expect(again.text.contains("<title>Error: This booking cannot be cancelled"))
        #expect(try client.get("/reservations/\(id)/cancel").status == 404)
        #expect(try client.get("/reservations/01M818MGYNHM5WM7SR94B7ADZR").status == 404)
    }

    /// A campaign with holds (issue 14): the page shows the hold with its
    /// deadline and a confirm button; a confirm there keeps the place; a
    /// second booking meanwhile says to deal with the first; an ended hold
    /// says so.
    @Test func aHeldBookingIsConfirmedFromItsPage() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("hp", limit: 2, slots: 1, capacity: 3, holdSeconds: 1)
        let client = stack.client()
        let held = try stack.reserve(client, campaign: "hp", citizen: "citizen-1", slot: "s0")
        let id = try #require(held.json["id"] as? String)
        let expires = try #require(held.json["expires_at"] as? String)
        let page = try client.get("/reservations/\(id)")
        #expect(page.text.contains("Your place is held: confirm it to keep it"))
        #expect(page.text.contains("held for you until \(expires.prefix(10)) \(expires.dropFirst(11).prefix(8)) UTC"))
        #expect(page.text.contains("<form method=\"post\" action=\"/reservations/\(id)/confirm\">"))
        #expect(!page.text.contains(held.json["code"] as? String ?? "-"))
        #expect(try client.get("/reservations/\(id)/cancel").status == 200)
        let confirmed = try client.request("POST", "/reservations/\(id)/confirm")
        #expect(confirmed.status == 303 && confirmed.header("Location") == "/reservations/\(id)")
        #expect(try client.get("/reservations/\(id)").text.contains("Your place is booked"))

        let second = try stack.reserve(client, campaign: "hp", citizen: "citizen-2", slot: "s0")
        let secondID = try #require(second.json["id"] as? String)
        #expect(waitUntil { (try? client.get("/v1/reservations/\(secondID)").json["status"] as? String) == "expired" })
        let ended = try client.get("/reservations/\(secondID)")
        #expect(ended.text.contains("This hold has ended") && ended.text.contains("Book another time"))
        let late = try client.request("POST", "/reservations/\(secondID)/confirm")
        #expect(late.status == 409 && late.text.contains("Too late to confirm"))
    }

    /// A paused or ended campaign says so and shows no places to book; a
    /// malformed id in a page's path is a page too.
    @Test func pausedAndClosedCampaignsSaySoAndBadIdsArePages() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("paused", status: "paused")
        try stack.makeCampaign("ended", closesAt: "2021-01-01T00:00:00Z")
        let client = stack.client()
        for (id, tag) in [("paused", "Paused"), ("ended", "Closed")] {
            for path in ["/campaigns/\(id)", "/campaigns/\(id)/sites/hall"] {
                let page = try client.get(path)
                #expect(page.status == 200)
                #expect(page.text.contains("<strong class=\"tag shut\">\(tag)</strong>"), "\(path)")
                #expect(page.text.contains("Booking is not open."), "\(path)")
                #expect(!page.text.contains("0 places left"), "\(path)")
            }
        }
        for path in ["/campaigns/Not%20An%20Id", "/reservations/garbage", "/campaigns/x/sites/BAD"] {
            let page = try client.get(path)
            #expect(page.status == 404)
            #expect(page.header("Content-Type") == "text/html; charset=utf-8", "\(path)")
        }
        #expect(try client.get("/v1/campaigns/BAD").header("Content-Type") == "application/problem+json")
    }

    @Test func acceptLanguageIsReadByWeight() {
        #expect(PageLanguage.preferred("zh-CN,zh;q=0.9,en;q=0.8") == .simplifiedChinese)
        #expect(PageLanguage.preferred("en-GB, zh;q=0.5") == .english)
        #expect(PageLanguage.preferred("fr, zh;q=0.2") == .simplifiedChinese)
        #expect(PageLanguage.preferred("zh-TW") == nil)
        #expect(PageLanguage.preferred("zh;q=0, en;q=0.1") == .english)
        #expect(PageLanguage.preferred("zh-Hans-CN") == .simplifiedChinese)
        #expect(PageLanguage.chosen(cookie: nil, acceptLanguage: "de") == .english)
        #expect(PageLanguage.chosen(cookie: "allot_lang=zh-Hans", acceptLanguage: "en") == .simplifiedChinese)
        #expect(PageLanguage.chosen(cookie: "allot_lang=xx", acceptLanguage: "zh") == .simplifiedChinese)
    }
}
