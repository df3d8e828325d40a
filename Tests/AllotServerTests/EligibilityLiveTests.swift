import AllotDomain
import Foundation
import Testing

/// Issue 14, eligibility rules, against a live server: each rule's refusal
/// is `403 not_eligible` with its `reason`, books nothing and is counted;
/// the booking pages refuse alike, and offer only times the citizen may book.
@Suite(.serialized) struct EligibilityLiveTests {
    /// LiveStack's slots start 2030-01-01 09:00 UTC: 17:00 on a Tuesday in
    /// UTC+8, the even ids' day under Taiwan's scheme.
    static let taiwanRules = #"{"pickup_days":["odd","even","odd","even","odd","even","any"],"age":{"min":18,"max":64},"#
        + #""utc_offset_minutes":480}"#

    /// A valid cn-resident id born on `birth` whose last digit has the
    /// given parity (its check character a digit).
    static func resident(born birth: String, odd: Bool, from serial: Int = 100) -> String {
        for candidate in serial..<(serial + 200) {
            let body = Array(("110105" + birth + String(String(candidate + 1000).dropFirst())).utf8)
            let check = CNResidentID.checkCharacter(body)
            guard check >= 0x30, check <= 0x39, (check - 0x30) % 2 == (odd ? 1 : 0) else { continue }
            return String(decoding: body + [check], as: UTF8.self)
        }
        fatalError("no id with that parity")
    }

    @Test func eachRuleRefusesWithItsReasonAndBooksNothing() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("el", scheme: "cn-resident", limit: 1, slots: 1, capacity: 10)
        let patched = try stack.admin("PATCH", "/v1/admin/campaigns/el", #"{"eligibility":\#(Self.taiwanRules)}"#)
        #expect(patched.status == 200, "\(patched.text)")
        // Citizens see the rules (which days are theirs), on every loop.
        for _ in 0..<8 {
            let shown = try stack.client().get("/v1/campaigns/el").json["eligibility"] as? [String: Any]
            #expect((shown?["pickup_days"] as? [String])?.count == 7 && shown?["utc_offset_minutes"] as? Int == 480)
        }
        let client = stack.client()
        let odd = Self.resident(born: "19800101", odd: true), even = Self.resident(born: "19800101", odd: false)
        let old = Self.resident(born: "19500101", odd: false), young = Self.resident(born: "20150101", odd: false)

        let wrongDay = try stack.reserve(client, campaign: "el", citizen: odd, slot: "s0")
        #expect(wrongDay.status == 403 && wrongDay.code == "not_eligible" && wrongDay.json["reason"] as? String == "pickup_day",
                "\(wrongDay.text)")
        #expect(wrongDay.header("Content-Type") == "application/problem+json")
        for citizen in [old, young] {
            let refused = try stack.reserve(client, campaign: "el", citizen: citizen, slot: "s0")
            #expect(refused.status == 403 && refused.json["reason"] as? String == "age", "\(refused.text)")
        }
        #expect(try stack.reserve(client, campaign: "el", citizen: even, slot: "s0").status == 201)
        // Refused attempts took nothing, and are counted by their reason.
        #expect(try waitUntil { (try stack.stats("el")["rejected"] as? [String: Any])?["not_eligible"] as? Int == 3 })
        #expect(try stack.stats("el")["remaining"] as? Int == 9)

        // Rules taken away: the odd id may book the same slot.
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/el", #"{"eligibility":null}"#).status == 200)
        #expect(try stack.client().get("/v1/campaigns/el").json["eligibility"] == nil)
        #expect(try stack.reserve(stack.client(), campaign: "el", citizen: odd, slot: "s0").status == 201)
        #expect(try invariantViolations(stack, campaign: "el", limit: 1).isEmpty)

        // The rules are kept in SQLite and in the audit trail.
        let stored = try stack.sqlite().statement("SELECT eligibility FROM campaigns WHERE id = 'el'").rows { $0.text(0) }
        #expect(stored == [#"{"utc_offset_minutes":0}"#])
        let audit = try stack.admin("GET", "/v1/admin/audit").text
        #expect(audit.contains("pickup_days"))
    }

    /// A rule that comes after a booking does not change the booking's
    /// answer: a retry with its Idempotency-Key (or the pages' second press)
    /// replays it; a refusal with a key is that key's answer in turn.
    @Test func aKeyedBookingMadeBeforeARuleChangeStillReplays() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("er", scheme: "cn-resident", limit: 2, slots: 2, capacity: 10)
        let client = stack.client()
        let odd = Self.resident(born: "19800101", odd: true)
        let booked = try stack.reserve(client, campaign: "er", citizen: odd, slot: "s0", headers: ["Idempotency-Key": "odd-1"])
        #expect(booked.status == 201)
        let token = try BookingPagesTests.checkToken(client, campaign: "er", slot: "s1", citizen: odd)
        let paged = try client.request("POST", "/campaigns/er/book/confirm", body: "token=\(token)", headers: BookingPagesTests.formType)
        #expect(paged.status == 303)

        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/er", #"{"eligibility":\#(Self.taiwanRules)}"#).status == 200)
        let replay = try stack.reserve(client, campaign: "er", citizen: odd, slot: "s0", headers: ["Idempotency-Key": "odd-1"])
        #expect(replay.status == 201 && replay.json["id"] as? String == booked.json["id"] as? String, "\(replay.text)")
        let pressedAgain = try client.request("POST", "/campaigns/er/book/confirm", body: "token=\(token)", headers: BookingPagesTests.formType)
        #expect(pressedAgain.status == 303 && pressedAgain.header("Location") == paged.header("Location"))
        // A new key: refused by the rule, and that refusal is its answer
        // even once the rule is gone.
        let refused = try stack.reserve(client, campaign: "er", citizen: odd, slot: "s1", headers: ["Idempotency-Key": "odd-2"])
        #expect(refused.status == 403 && refused.json["reason"] as? String == "pickup_day")
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/er", #"{"eligibility":null}"#).status == 200)
        let again = try stack.reserve(client, campaign: "er", citizen: odd, slot: "s1", headers: ["Idempotency-Key": "odd-2"])
        #expect(again.status == 403 && again.json["reason"] as? String == "pickup_day", "\(again.text)")
        #expect(try invariantViolations(stack, campaign: "er", limit: 2).isEmpty)
    }

    @Test func aBadRuleIsRefusedAndChangesNothing() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("eb", scheme: "any", slots: 1)
        let refused = try stack.admin("PATCH", "/v1/admin/campaigns/eb", #"{"eligibility":{"age":{"min":18}}}"#)
        #expect(refused.status == 400 && refused.code == "invalid_field", "\(refused.text)")
        let short = try stack.admin("PATCH", "/v1/admin/campaigns/eb", #"{"eligibility":{"pickup_days":["odd"]}}"#)
        #expect(short.status == 400 && short.code == "invalid_field")
        #expect(try stack.client().get("/v1/campaigns/eb").json["eligibility"] == nil)
        #expect(try stack.reserve(stack.client(), campaign: "eb", citizen: "anyone-1", slot: "s0").status == 201)
    }

    @Test func thePagesRefuseAlikeAndOfferOnlyTimesTheCitizenMayBook() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("ep", scheme: "cn-resident", limit: 1, slots: 1, capacity: 1)
        // A second slot on Wednesday (odd ids' day), and the rules.
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/ep/slots", """
            {"slots":[{"id":"s0","site_id":"hall","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":1},
                      {"id":"wed","site_id":"hall","starts_at":"2030-01-02T09:00:00Z","ends_at":"2030-01-02T10:00:00Z","capacity":5},
                      {"id":"tue2","site_id":"hall","starts_at":"2030-01-01T11:00:00Z","ends_at":"2030-01-01T12:00:00Z","capacity":5}]}
            """).status == 200)
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/ep", #"{"eligibility":\#(Self.taiwanRules)}"#).status == 200)
        let client = stack.client()
        let odd = Self.resident(born: "19800101", odd: true), even = Self.resident(born: "19800101", odd: false)

        // The odd id on a Tuesday: the refusal's page, no token, the id not shown.
        let form = try client.get("/campaigns/ep/book?site=hall&slot=s0")
        let key = try #require(BookingPagesTests.hidden("key", in: form.text))
        let refused = try client.request("POST", "/campaigns/ep/book", body: "slot=s0&key=\(key)&citizen_id=\(odd)",
                                         headers: BookingPagesTests.formType)
        #expect(refused.status == 403 && refused.text.contains("not on a pickup day"), "\(refused.status)")
        #expect(BookingPagesTests.hidden("token", in: refused.text) == nil && !refused.text.contains(odd))

        // s0 taken by someone else: the even id's slot-full page offers the
        // other Tuesday, not Wednesday.
        #expect(try stack.reserve(client, campaign: "ep", citizen: Self.resident(born: "19800101", odd: false, from: 400),
                                  slot: "s0").status == 201)
        let token = try BookingPagesTests.checkToken(client, campaign: "ep", slot: "s0", citizen: even)
        let full = try client.request("POST", "/campaigns/ep/book/confirm", body: "token=\(token)", headers: BookingPagesTests.formType)
        #expect(full.status == 409, "\(full.status)")
        #expect(full.text.contains(#"value="tue2""#) && !full.text.contains(#"value="wed""#))
        // Choosing Wednesday anyway (a crafted form) is refused by the rules.
        let fullToken = try #require(BookingPagesTests.hidden("token", in: full.text))
        let wednesday = try client.request("POST", "/campaigns/ep/book/slot", body: "token=\(fullToken)&slot=wed",
                                           headers: BookingPagesTests.formType)
        #expect(wednesday.status == 403 && wednesday.text.contains("not on a pickup day"))
    }
}
