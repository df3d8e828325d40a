@testable import AllotDomain
import Testing

/// A deterministic generator for pure tests (never used by the server).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct ReservationIDTests {
    let cipher = RouteCipher(secret: Array("test-citizen-secret-0123456789-abcdef".utf8))

    @Test func theRouteComesBackOnlyWithTheKeyThatMaskedIt() throws {
        var random = SplitMix(state: 9)
        let other = RouteCipher(secret: Array("another-citizen-secret-0123456789-abc".utf8))
        for route in [UInt32(1), 2, 4_095, RouteCipher.routeMax] {
            let id = ReservationID.make(millis: 1_772_323_201_234, route: route, cipher: cipher, using: &random)
            let parsed = try #require(ReservationID(parsing: Substring(id.text.lowercased())))
            #expect(parsed.route(cipher: cipher) == route)
            #expect(parsed.millis == 1_772_323_201_234)
            #expect(parsed.route(cipher: other) != route)
        }
    }

    @Test func theMaskedRouteLooksRandom() {
        // Ids of one campaign share no visible route: their last 24 bits
        // (the masked route) take many values.
        var random = SplitMix(state: 10)
        let tails = Set((0..<200).map { _ in
            ReservationID.make(millis: 5, route: 3, cipher: cipher, using: &random).bits.low & 0xFF_FFFF
        })
        #expect(tails.count > 190)
    }
    @Test func idsAre26CrockfordCharactersCarryingTheirMillisecond() {
        var random = SplitMix(state: 1)
        let id = ReservationID.make(millis: 1_772_323_201_234, route: 7, cipher: cipher, using: &random)
        #expect(id.text.count == 26)
        #expect(id.text.utf8.allSatisfy { Crockford.alphabet.contains($0) })
        #expect(id.millis == 1_772_323_201_234)
        #expect(ReservationID(parsing: Substring(id.text)) == id)
        #expect(ReservationID(parsing: Substring(id.text.lowercased())) == id)
    }

    @Test func laterIdsSortAfterEarlierOnes() {
        var random = SplitMix(state: 2)
        var previous = ReservationID.make(millis: 1_000, route: 7, cipher: cipher, using: &random)
        for millis in stride(from: UInt64(2_000), to: 200_000, by: 997) {
            let next = ReservationID.make(millis: millis, route: 7, cipher: cipher, using: &random)
            #expect(previous.text < next.text)
            previous = next
        }
    }

    @Test func randomPartDiffers() {
        var random = SplitMix(state: 3)
        let ids = Set((0..<1000).map { _ in ReservationID.make(millis: 5, route: 7, cipher: cipher, using: &random) })
        #expect(ids.count == 1000)
    }

    @Test(arguments: ["", "01M818MGYNHM5WM7SR94B7ADZ", "01M818MGYNHM5WM7SR94B7ADZRR", "01M818MGYNHM5WM7SR94B7ADZU",
                      "81M818MGYNHM5WM7SR94B7ADZR", "01M818MGYNHM5WM7SR94B7ADZ!"])
    func rejectsMalformed(_ raw: String) {
        #expect(ReservationID(parsing: Substring(raw)) == nil)
    }

    @Test func pickupCodeIsTwoGroupsOfFour() {
        var random = SplitMix(state: 4)
        let code = PickupCode.make(using: &random)
        #expect(code.count == 9)
        #expect(Array(code)[4] == "-")
        #expect(code.replacingOccurrences(of: "-", with: "").utf8.allSatisfy { Crockford.alphabet.contains($0) })
    }
}
