import AllotDomain
import Testing

/// Issue 14's holds as pure rules: the setting, the route, and a hold's
/// state by a clock the test moves.
struct HoldRulesTests {
    static func campaign(_ extra: String) throws -> Campaign {
        try Campaign.decode(Fields.parse(Array("""
            {"id":"c","name":"C","id_scheme":"any","per_citizen_limit":1,"opens_at":"2030-01-01T00:00:00Z",
             "closes_at":"2030-02-01T00:00:00Z"\(extra)}
            """.utf8)))
    }

    @Test func holdSecondsIsSetAtCreationWithinItsRange() throws {
        #expect(try Self.campaign(#","hold_seconds":300"#).holdMillis == 300_000)
        #expect(try Self.campaign("").holdSeconds == nil)
        #expect(try Self.campaign("").holdMillis == 0)
        for bad in ["0", "86401", "-5", "1.5", "\"60\"", "null"] {
            #expect(throws: Problem.self, "hold_seconds \(bad)") { try Self.campaign(#","hold_seconds":\#(bad)"#) }
        }
        // A lottery's: its winners' holds, and its line's offers.
        let lottery = try Self.campaign(#","hold_seconds":60,"allocation":"lottery","lottery":{"public_value_source":"drand round 1"}"#)
        #expect(lottery.holdMillis == 60_000 && lottery.offerMillis == 60_000 && lottery.waitlist == nil)
        #expect(try Self.campaign(#","hold_seconds":60"#).offerMillis == 0)
        #expect(try Self.campaign(#","hold_seconds":60,"waitlist":{"offer_seconds":30}"#).offerMillis == 30_000)
        // Not by PATCH: citizens are told from the start whether to confirm.
        let campaign = try Self.campaign(#","hold_seconds":60"#)
        #expect(throws: Problem.self) { try campaign.patched(with: Fields.parse(Array(#"{"hold_seconds":120}"#.utf8))) }
        var json = JSONWriter()
        campaign.write(to: &json, nowMillis: 0)
        #expect(json.text.contains(#""hold_seconds":60"#))
    }

    static func someID() -> ReservationID {
        var random = SplitMix(state: 14)
        return ReservationID.make(millis: 1_000, route: 1, cipher: RouteCipher(secret: Array("a-secret-of-enough-bytes-0123456789".utf8)),
                                  using: &random)
    }

    @Test func aHoldEndsAtItsExpiryByTheClockItIsReadWith() {
        let id = Self.someID()
        let held = Reservation(id: id, campaignID: "c", slotID: "s", siteID: "h", status: .held, code: "ABC123",
                               createdAtMillis: 1_000, expiresAtMillis: 61_000)
        var clock: Int64 = 1_000
        #expect(held.effective(nowMillis: clock).status == .held)
        clock = 60_999
        #expect(held.effective(nowMillis: clock).status == .held)
        clock = 61_000  // the expiry itself is past it (as expire.lua and transition.lua read it)
        #expect(held.effective(nowMillis: clock).status == .expired)
        #expect(String(decoding: held.effective(nowMillis: clock).json, as: UTF8.self).contains(#""expires_at":"1970-01-01T00:01:01.000Z""#))
        // A confirmed or cancelled one does not change with the clock.
        var confirmed = held
        confirmed.status = .confirmed
        #expect(confirmed.effective(nowMillis: 1_000_000).status == .confirmed)
        #expect(!String(decoding: confirmed.json, as: UTF8.self).contains("expires_at"))
    }

    @Test func theConfirmRoutesAreAPostEach() throws {
        let parsed = Self.someID(), id = parsed.text
        #expect(try Router.route(method: .post, path: Substring("/v1/reservations/\(id)/confirm")).get() == .confirmReservation(parsed))
        #expect(throws: Problem.self) { try Router.route(method: .get, path: Substring("/v1/reservations/\(id)/confirm")).get() }
        #expect(try Router.route(method: .post, path: Substring("/reservations/\(id)/confirm")).get() == .confirmFromPage(parsed))
        #expect(Route.confirmReservation(parsed).neededRole == nil)
    }
}
