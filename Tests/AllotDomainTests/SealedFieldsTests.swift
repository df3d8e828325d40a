@testable import AllotDomain
import Testing

/// What the pages hand a browser and read back: forms, sealed tokens, masked ids.
struct SealedFieldsTests {
    let secret = [UInt8](repeating: 7, count: 32)

    @Test func aSealedTextOpensUntilItExpires() throws {
        let signer = SealedFields(secret: secret, purpose: "test")
        let text = try #require(signer.seal(["a", "", "é 中"], expiresAtMillis: 1_000))
        #expect(signer.open(text, nowMillis: 999)?.fields == ["a", "", "é 中"])
        #expect(signer.open(text, nowMillis: 999)?.expiresAtMillis == 1_000)
        #expect(signer.open(text, nowMillis: 1_000) == nil)
        #expect(!text.contains("+") && !text.contains("/") && !text.contains("="))
    }

    @Test func anyChangeOrAnotherKeyOrPurposeIsRefused() throws {
        let signer = SealedFields(secret: secret, purpose: "test")
        let text = try #require(signer.seal(["campaign", "slot"], expiresAtMillis: .max))
        #expect(SealedFields(secret: secret, purpose: "other").open(text, nowMillis: 0) == nil)
        // Sealed, not only signed: nothing of the fields shows in the text.
        let decoded = String(decoding: Base64URL.decode(Substring(text)) ?? [], as: UTF8.self)
        #expect(!decoded.contains("campaign") && !decoded.contains("slot"))
        #expect(SealedFields(secret: [UInt8](repeating: 8, count: 32), purpose: "test").open(text, nowMillis: 0) == nil)
        // Every one-character change of the text: refused.
        let characters = Array(text)
        for index in characters.indices {
            var changed = characters
            changed[index] = changed[index] == "A" ? "B" : "A"
            #expect(signer.open(String(changed), nowMillis: 0) == nil, "\(index)")
        }
        for bad in ["", ".", "abc", text + ".x", String(text.dropLast()), String(repeating: "A", count: 5000)] {
            #expect(signer.open(bad, nowMillis: 0) == nil)
        }
        // A field with the separator cannot be sealed (it would split in two).
        #expect(signer.seal(["a\u{1F}b"], expiresAtMillis: .max) == nil)
    }

    @Test func aBookingTokenRoundTripsAndKeepsItsExpiry() throws {
        let box = SealedFields(secret: secret, purpose: "booking token")
        let token = BookingToken(campaignID: "c", slotID: "s0", citizenKey: String(repeating: "f", count: 32), formKey: "k1",
                                 maskedID: BookingToken.mask("11010519491231002X"),
                                 facts: EligibilityFacts(normalizedID: "11010519491231002X", scheme: .cnResident), nowMillis: 0)
        let text = try #require(token.sealed(with: box))
        #expect(BookingToken(opening: text, with: box, nowMillis: BookingToken.lifetimeMillis - 1) == token)
        #expect(token.facts.lastDigit == 2 && token.facts.birthDate?.year == 1949)
        #expect(BookingToken(opening: text, with: box, nowMillis: BookingToken.lifetimeMillis) == nil)
        // Sealed again later (a page shown again), it still ends when the first did.
        let reopened = try #require(BookingToken(opening: text, with: box, nowMillis: 1_000))
        #expect(BookingToken(opening: try #require(reopened.sealed(with: box)), with: box, nowMillis: BookingToken.lifetimeMillis) == nil)
        // The booking's key: the same for the same form, citizen and slot;
        // another citizen with the same form, or another slot, another key.
        let same = BookingToken(campaignID: "c", slotID: "s0", citizenKey: token.citizenKey, formKey: "k1", maskedID: "",
                                facts: token.facts, nowMillis: 5)
        let other = BookingToken(campaignID: "c", slotID: "s0", citizenKey: String(repeating: "e", count: 32), formKey: "k1",
                                 maskedID: "", facts: token.facts, nowMillis: 0)
        #expect(same.idempotencyKey == token.idempotencyKey)
        #expect(other.idempotencyKey != token.idempotencyKey)
        #expect(token.forSlot("s1").idempotencyKey == token.forSlot("s1").idempotencyKey)
        #expect(token.forSlot("s1").idempotencyKey != token.idempotencyKey)
        #expect(token.forSlot("s1").expiresAtMillis == token.expiresAtMillis)
    }

    @Test func idsAreMaskedToTheirEnds() {
        #expect(BookingToken.mask("11010519491231002X") == "11••••••••••••••2X")
        #expect(BookingToken.mask("A123456789") == "A1••••••89")
        #expect(BookingToken.mask("abcde") == "a•••e")
        #expect(BookingToken.mask("abc") == "•••")
    }

    @Test func formsDecodeAsBrowsersEncode() throws {
        let form = try #require(FormFields(Array("slot=s0&citizen_id=A+1%2B2%E4%B8%AD&empty=&flag&slot=again".utf8)[...]))
        #expect(form["slot"] == "s0")
        #expect(form["citizen_id"] == "A 1+2中")
        #expect(form["empty"] == "")
        #expect(form["flag"] == "")
        #expect(form["missing"] == nil)
        #expect(FormFields([]) != nil)
        for bad in ["a=%", "a=%4", "a=%zz", "a=%FF", "%=1"] {
            #expect(FormFields(Array(bad.utf8)[...]) == nil, "\(bad)")
        }
        let many = (0...FormFields.fieldsMax).map { "f\($0)=1" }.joined(separator: "&")
        #expect(FormFields(Array(many.utf8)[...]) == nil)
    }
}
