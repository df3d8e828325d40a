@testable import AllotDomain
import Testing

@Suite struct IDSchemeTests {
    @Test func cnResidentAcceptsValidNumbers() {
        #expect(IDScheme.cnResident.normalize("11010519491231002X") == "11010519491231002X")
        #expect(IDScheme.cnResident.normalize("11010519491231002x") == "11010519491231002X")
        // Made with the check character function, then checked independently.
        let body = Array("44030420000229123".utf8)  // a 29 February in a leap year
        let number = String(decoding: body + [CNResidentID.checkCharacter(body)], as: UTF8.self)
        #expect(IDScheme.cnResident.normalize(number) == number)
    }

    @Test(arguments: [
        "11010519491231002",     // 17 characters
        "110105194912310021",    // wrong check character
        "11010519491231002Y",    // not a check character
        "11010519490230002X",    // 30 February (check char recomputed below)
        "1101051949123100XX",    // letter among the digits
        "",
        "11010519491231002X0",
    ])
    func cnResidentRejects(_ raw: String) {
        #expect(IDScheme.cnResident.normalize(raw) == nil)
    }

    @Test func cnResidentRejectsImpossibleDateEvenWithRightCheck() {
        for date in ["19490230", "19491301", "20010229", "17991231"] {
            let body = Array("110105\(date)002".utf8)
            let number = String(decoding: body + [CNResidentID.checkCharacter(body)], as: UTF8.self)
            #expect(IDScheme.cnResident.normalize(number) == nil, "\(number)")
        }
    }

    @Test func twNationalAcceptsValidNumbers() {
        #expect(IDScheme.twNational.normalize("A123456789") == "A123456789")
        #expect(IDScheme.twNational.normalize("a123456789") == "A123456789")
        #expect(IDScheme.twNational.normalize("F131104093") == "F131104093")
    }

    @Test(arguments: ["A123456788", "A12345678", "1123456789", "A12345678X", "AA23456789", "A1234567890"])
    func twNationalRejects(_ raw: String) {
        #expect(IDScheme.twNational.normalize(raw) == nil)
    }

    @Test func twNationalChecksumWeighsTheLetterValue() {
        // A = 10 → 1×1 + 0×9, then 1 2 3 4 5 6 7 8 weighted 8…1, then 9×1.
        #expect(TWNationalID.checksum(Array("A123456789".utf8)) == 130)
    }

    @Test func anyTakesVisibleASCII() {
        #expect(IDScheme.any.normalize("x") == "x")
        #expect(IDScheme.any.normalize(String(repeating: "a", count: 64)) != nil)
        #expect(IDScheme.any.normalize(String(repeating: "a", count: 65)) == nil)
        #expect(IDScheme.any.normalize("") == nil)
        #expect(IDScheme.any.normalize("has space") == nil)
        #expect(IDScheme.any.normalize("tab\t") == nil)
        #expect(IDScheme.any.normalize("é") == nil)
    }
}

@Suite struct CitizenKeyerTests {
    let keyer = CitizenKeyer(secret: Array(repeating: 7, count: 32))

    @Test func keyIsStableTruncatedHexAndHidesTheID() {
        let key = keyer.citizenKey(normalizedID: "11010519491231002X")
        #expect(key == keyer.citizenKey(normalizedID: "11010519491231002X"))
        #expect(key.count == 32)
        #expect(key.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(!key.contains("1101051949"))
    }

    @Test func keyDependsOnSecretAndID() {
        let other = CitizenKeyer(secret: Array(repeating: 8, count: 32))
        #expect(keyer.citizenKey(normalizedID: "A123456789") != other.citizenKey(normalizedID: "A123456789"))
        #expect(keyer.citizenKey(normalizedID: "A123456789") != keyer.citizenKey(normalizedID: "F131104093"))
    }

    @Test func matchesHMACSHA256TestVector() {
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
        // = 5bdcc146bf60754e6a042426089575c7 5a003f08…, kept to its first 16 bytes.
        let jefe = CitizenKeyer(unsafeTestSecret: Array("Jefe".utf8))
        #expect(jefe.citizenKey(normalizedID: "what do ya want for nothing?") == "5bdcc146bf60754e6a042426089575c7")
    }
}
