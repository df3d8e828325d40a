@testable import AllotServer
import Foundation
import Testing

/// Booking from the pages against a live server: the form, check your
/// answers, the booking by post/redirect/get, double submits, and a page
/// for every refusal. The raw id is never shown again after its form.
@Suite(.serialized) struct BookingPagesTests {
    static let citizenID = "11010519491231002X"

    @Test func aBookingFromTheSitePageToTheReservationPage() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("bk", scheme: "cn-resident", slots: 2, capacity: 5)
        let client = stack.client()
        let site = try client.get("/campaigns/bk/sites/hall")
        #expect(site.text.contains(#"<input type="radio" name="slot" id="slot-s0" value="s0">"#))
        #expect(site.text.contains(#"<form method="get" action="/campaigns/bk/book""#))

        // No time chosen: the site page again, with the error linked to the first choice.
        let unchosen = try client.get("/campaigns/bk/book?site=hall")
        #expect(unchosen.status == 422)
        #expect(unchosen.text.contains("<title>Error: Hall"))
        #expect(unchosen.text.contains(##"<a href="#slot-s0">Choose a time that has places left</a>"##))

        let form = try client.get("/campaigns/bk/book?site=hall&slot=s0")
        #expect(form.status == 200)
        #expect(form.header("Cache-Control") == "no-store, private")
        #expect(form.text.contains("18 characters"))
        let key = try #require(Self.hidden("key", in: form.text))

        // A wrong id: the form again, the error linked to the field, the id not shown.
        let wrong = try client.request("POST", "/campaigns/bk/book", body: "slot=s0&key=\(key)&citizen_id=110105194912310021",
                                       headers: Self.formType)
        #expect(wrong.status == 422)
        #expect(wrong.text.contains("<title>Error: What is your id number?"))
        #expect(wrong.text.contains(##"<a href="#citizen-id">Enter a valid resident id number"##))
        #expect(wrong.text.contains(#"aria-invalid="true""#))
        #expect(!wrong.text.contains("110105194912310021"))
        let empty = try client.request("POST", "/campaigns/bk/book", body: "slot=s0&key=\(key)&citizen_id=", headers: Self.formType)
        #expect(empty.status == 422 && empty.text.contains("Enter your id number"))

        let check = try client.request("POST", "/campaigns/bk/book", body: "slot=s0&key=\(key)&citizen_id=\(Self.citizenID.lowercased())",
                                       headers: Self.formType)
        #expect(check.status == 200)
        #expect(check.text.contains("Check your answers before booking"))
        #expect(check.text.contains("11••••••••••••••2X"))
        #expect(!check.text.contains("1101051949") && !check.text.contains("11010519491231002x"))
        #expect(check.header("Cache-Control") == "no-store, private")
        let token = try #require(Self.hidden("token", in: check.text))

        // Pressed twice (or reloaded): one booking, both to its page.
        let booked = try client.request("POST", "/campaigns/bk/book/confirm", body: "token=\(token)", headers: Self.formType)
        #expect(booked.status == 303)
        let location = try #require(booked.header("Location"))
        #expect(location.hasPrefix("/reservations/"))
        let again = try stack.client().request("POST", "/campaigns/bk/book/confirm", body: "token=\(token)", headers: Self.formType)
        #expect(again.status == 303 && again.header("Location") == location)

        let page = try client.get(location)
        #expect(page.text.contains("Your place is booked"))
        #expect(page.text.contains(#"<a href="\#(location)">\#(location)</a>"#))
        let id = String(location.dropFirst("/reservations/".count))
        #expect(try client.get("/v1/reservations/\(id)").json["status"] as? String == "confirmed")
        // The same citizen as the API knows them (the same keyed id): at their limit.
        let viaAPI = try stack.reserve(client, campaign: "bk", citizen: Self.citizenID, slot: "s1")
        #expect(viaAPI.code == "citizen_limit_reached")
        let stats = try stack.stats("bk")
        #expect(stats["confirmed"] as? Int == 1, "\(stats)")
        for body in [unchosen, form, wrong, check, page] { #expect(body.body.count < 30_000) }
        // Nor in any log line, at any level (the refused one included).
        #expect(stack.logLines.withLock { $0.allSatisfy { !$0.contains("1101051949") && !$0.contains("110105194912310021") } })
    }

    /// Slot full (other times offered, and taking one books it), the limit,
    /// not open yet, a token altered, a form that is not one.
    @Test func everyRefusalHasItsPage() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("rf", slots: 2, capacity: 1)
        let client = stack.client()
        let token = try Self.checkToken(client, campaign: "rf", slot: "s0", citizen: "late-citizen")
        #expect(try stack.reserve(client, campaign: "rf", citizen: "early-citizen", slot: "s0").status == 201)

        let full = try client.request("POST", "/campaigns/rf/book/confirm", body: "token=\(token)", headers: Self.formType)
        #expect(full.status == 409)
        #expect(full.text.contains("<title>Error: That time is now full"))
        #expect(full.text.contains(#"id="slot-s1" value="s1""#))
        #expect(!full.text.contains(#"id="slot-s0""#))
        let otherToken = try #require(Self.hidden("token", in: full.text))
        let unchosen = try client.request("POST", "/campaigns/rf/book/slot", body: "token=\(otherToken)", headers: Self.formType)
        #expect(unchosen.status == 422 && unchosen.text.contains(##"<a href="#slot-s1">"##))
        let recheck = try client.request("POST", "/campaigns/rf/book/slot", body: "token=\(otherToken)&slot=s1", headers: Self.formType)
        #expect(recheck.status == 200 && recheck.text.contains("Check your answers"))
        let second = try #require(Self.hidden("token", in: recheck.text))
        let booked = try client.request("POST", "/campaigns/rf/book/confirm", body: "token=\(second)", headers: Self.formType)
        #expect(booked.status == 303)

        // At the limit (one each): the page says how to free a place.
        try stack.makeCampaign("lim", slots: 2, capacity: 5)
        #expect(try stack.reserve(client, campaign: "lim", citizen: "has-one", slot: "s0").status == 201)
        let limited = try client.request("POST", "/campaigns/lim/book/confirm",
                                         body: "token=\(try Self.checkToken(client, campaign: "lim", slot: "s1", citizen: "has-one"))",
                                         headers: Self.formType)
        #expect(limited.status == 409)
        #expect(limited.text.contains("<title>Error: You have booked already"))

        // Not open yet: when it opens.
        try stack.makeCampaign("later", opensAt: "2090-05-01T08:00:00Z")
        let later = try client.get("/campaigns/later/book?site=hall&slot=s0")
        #expect(later.status == 409)
        #expect(later.text.contains("Booking opens at 2090-05-01 08:00 UTC"))

        // A token altered, or made for another campaign: start again, nothing booked.
        var altered = Array(second)
        altered[10] = altered[10] == "A" ? "B" : "A"
        for (campaign, text) in [("rf", String(altered)), ("lim", second), ("rf", "")] {
            let refused = try client.request("POST", "/campaigns/\(campaign)/book/confirm", body: "token=\(text)", headers: Self.formType)
            #expect(refused.status == 400)
            #expect(refused.text.contains("<title>Error: Your answers have expired"))
        }
        #expect(try client.request("POST", "/campaigns/rf/book/confirm", body: "token=%zz", headers: Self.formType).status == 400)
        // Posted from another site's page (a token made by this server, all
        // else right): refused, nothing booked. From its own page: booked.
        let host = "127.0.0.1"  // as HTTPClient's Host header has it
        let another = try Self.checkToken(client, campaign: "lim", slot: "s1", citizen: "cross-site-victim")
        for headers in [["Sec-Fetch-Site": "cross-site"], ["Sec-Fetch-Site": "same-site"], ["Origin": "http://evil.example"],
                        ["Origin": "null"]] {
            let refused = try client.request("POST", "/campaigns/lim/book/confirm", body: "token=\(another)",
                                             headers: Self.formType.merging(headers) { $1 })
            #expect(refused.status == 403 && refused.text.contains("This form came from another site"), "\(headers)")
        }
        let sameOrigin = try client.request("POST", "/campaigns/lim/book/confirm", body: "token=\(another)",
                                            headers: Self.formType.merging(["Origin": "http://\(host)", "Sec-Fetch-Site": "same-origin"]) { $1 })
        #expect(sameOrigin.status == 303)
        let stats = try stack.stats("rf")
        #expect(stats["confirmed"] as? Int == 2, "\(stats)")
    }

    /// 429 and 503: the check page again, its button ready, saying how long
    /// to wait; pressing again when it can books once.
    @Test func rateLimitedAndUnavailableKeepTheForm() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("busy", limit: 5, slots: 1, capacity: 50)
        let limits = #"{"global":{"rate":100,"burst":100},"ip":{"rate":0.001,"burst":1},"citizen":{"rate":100,"burst":100}}"#
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/busy/rate-limits", limits).status == 200)
        let client = stack.client()
        #expect(try stack.reserve(client, campaign: "busy", citizen: "first", slot: "s0").status == 201)
        let token = try Self.checkToken(client, campaign: "busy", slot: "s0", citizen: "second")
        let limited = try client.request("POST", "/campaigns/busy/book/confirm", body: "token=\(token)", headers: Self.formType)
        #expect(limited.status == 429)
        let wait = try #require(limited.header("Retry-After"))
        #expect(limited.text.contains("Wait \(wait) seconds"))
        #expect(limited.text.contains("<title>Error: Check your answers"))
        #expect(limited.text.contains(##"<a href="#book-button">"##))
        #expect(Self.hidden("token", in: limited.text) != nil)

        stack.redis.kill()
        let down = try client.request("POST", "/campaigns/busy/book/confirm", body: "token=\(token)", headers: Self.formType)
        #expect(down.status == 503)
        #expect(down.text.contains("Your place is not booked yet"))
        #expect(down.header("Retry-After") != nil)
        #expect(Self.hidden("token", in: down.text) != nil)
    }

    // MARK: helpers

    static let formType = ["Content-Type": "application/x-www-form-urlencoded"]

    /// Issue 14's waitlist from the pages: a slot-full page offers the
    /// line; the entry's page shows the place in line, then the offer,
    /// whose page confirms it; a second entry leaves the line.
    @Test func aFullSlotsPageJoinsTheLineAndTheOfferIsConfirmedFromItsPage() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try WaitlistTests.makeWaitlistCampaign(stack, "wlp", capacity: 1, offerSeconds: 60)
        let client = stack.client()
        let token = try Self.checkToken(client, campaign: "wlp", slot: "s0", citizen: "late-citizen")
        let booked = try #require(try stack.reserve(client, campaign: "wlp", citizen: "early-citizen", slot: "s0").json["id"] as? String)
        let full = try client.request("POST", "/campaigns/wlp/book/confirm", body: "token=\(token)", headers: Self.formType)
        #expect(full.status == 409 && full.text.contains(#"action="/campaigns/wlp/book/waitlist""#), "\(full.text)")
        let lineToken = try #require(Self.hidden("token", in: full.text))
        let joined = try client.request("POST", "/campaigns/wlp/book/waitlist", body: "token=\(lineToken)", headers: Self.formType)
        #expect(joined.status == 303, "\(joined.text)")
        let entryPath = try #require(joined.header("Location"))
        let waiting = try client.get(entryPath)
        #expect(waiting.status == 200 && waiting.text.contains("You are number 1 in line") && waiting.text.contains("Hall"))
        #expect(waiting.text.contains(#"action="\#(entryPath)/leave""#))
        // Once more: one line at a time.
        let again = try client.request("POST", "/campaigns/wlp/book/waitlist", body: "token=\(lineToken)", headers: Self.formType)
        #expect(again.status == 409 && again.text.contains("in a line for this campaign already"))

        // The place comes back: the entry's page shows the offer; its page confirms it.
        #expect(try client.request("DELETE", "/v1/reservations/\(booked)").status == 200)
        let offered = try client.get(entryPath)
        #expect(offered.text.contains("A place is offered to you"))
        let offer = try #require(offered.text.range(of: #"href="/reservations/"#).map { String(offered.text[$0.upperBound...].prefix(26)) })
        #expect(try client.get("/reservations/\(offer)").text.contains("Your place is held"))
        #expect(try client.request("POST", "/reservations/\(offer)/confirm").status == 303)
        #expect(try client.get("/v1/reservations/\(offer)").json["status"] as? String == "confirmed")
        #expect(try client.request("POST", "\(entryPath)/leave").status == 409)

        // Another citizen joins, then leaves from the page.
        let other = try #require(try WaitlistTests.join(client, "wlp", "other", slot: "s0").json["id"] as? String)
        let left = try client.request("POST", "/waitlist/\(other)/leave")
        #expect(left.status == 303)
        #expect(try client.get("/waitlist/\(other)").text.contains("You left the line"))
    }

    /// A hidden field's value in a page.
    static func hidden(_ name: String, in page: String) -> String? {
        guard let range = page.range(of: #"name="\#(name)" value=""#) else { return nil }
        return String(page[range.upperBound...].prefix { $0 != "\"" })
    }

    /// The check-your-answers token for `citizen` on `slot` (an `any` campaign).
    static func checkToken(_ client: HTTPClient, campaign: String, slot: String, citizen: String) throws -> String {
        let form = try client.get("/campaigns/\(campaign)/book?site=hall&slot=\(slot)")
        let key = try #require(hidden("key", in: form.text), "\(form.status) \(form.text.prefix(300))")
        let check = try client.request("POST", "/campaigns/\(campaign)/book", body: "slot=\(slot)&key=\(key)&citizen_id=\(citizen)",
                                       headers: formType)
        return try #require(hidden("token", in: check.text), "\(check.status)")
    }
}
