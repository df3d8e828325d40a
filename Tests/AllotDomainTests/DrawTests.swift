@testable import AllotDomain
import Crypto
import Foundation
import Testing

/// The lottery draw's pure parts: the Merkle tree against RFC 9162 as
/// written, golden vectors made independently (Tests/Vectors/draw-golden,
/// Python), and `verify` refusing any change to the published files.
struct DrawTests {
    // MARK: the Merkle tree

    /// RFC 9162, 2.1.1: MTH, recursively, as the RFC writes it.
    static func referenceRoot(_ leaves: [[UInt8]]) -> [UInt8] {
        if leaves.isEmpty { return Array(SHA256.hash(data: [UInt8]())) }
        if leaves.count == 1 { return MerkleTree.leafHash(leaves[0]) }
        let k = largestPowerOfTwo(below: leaves.count)
        return MerkleTree.nodeHash(referenceRoot(Array(leaves[..<k])), referenceRoot(Array(leaves[k...])))
    }

    /// RFC 9162, 2.1.3.1: PATH(m, D[n]).
    static func referencePath(_ m: Int, _ leaves: [[UInt8]]) -> [[UInt8]] {
        guard leaves.count > 1 else { return [] }
        let k = largestPowerOfTwo(below: leaves.count)
        if m < k { return referencePath(m, Array(leaves[..<k])) + [referenceRoot(Array(leaves[k...]))] }
        return referencePath(m - k, Array(leaves[k...])) + [referenceRoot(Array(leaves[..<k]))]
    }

    static func largestPowerOfTwo(below n: Int) -> Int {
        var k = 1
        while k * 2 < n { k *= 2 }
        return k
    }

    @Test func theTreeIsRFC9162sAndItsProofsHold() {
        #expect(MerkleTree.inclusionProof(index: 3, hashes: [MerkleTree.leafHash([1])]) == nil)
        for count in 0...40 {
            let leaves = (0..<count).map { Array("entry-\($0)".utf8) }
            let root = MerkleTree.root(leaves)
            #expect(root == Self.referenceRoot(leaves), "\(count) leaves")
            let hashes = leaves.map(MerkleTree.leafHash)
            for index in leaves.indices {
                let proof = MerkleTree.inclusionProof(index: index, hashes: hashes) ?? []
                #expect(proof == Self.referencePath(index, leaves), "\(index) of \(count)")
                #expect(MerkleTree.verifyInclusion(leaf: leaves[index], index: index, count: count, proof: proof, root: root))
                // Another leaf, another place, or a changed step: refused.
                #expect(!MerkleTree.verifyInclusion(leaf: Array("other".utf8), index: index, count: count, proof: proof, root: root))
                if count > 1 {
                    #expect(!MerkleTree.verifyInclusion(leaf: leaves[index], index: (index + 1) % count, count: count, proof: proof,
                                                        root: root))
                    var bent = proof
                    bent[0][0] ^= 1
                    #expect(!MerkleTree.verifyInclusion(leaf: leaves[index], index: index, count: count, proof: bent, root: root))
                }
            }
        }
    }

    @Test func theTreeFileGivesTheSameRootAndProofsByReadsAlone() {
        for count in 0...40 {
            let leaves = (0..<count).map { Array("entry-\($0)".utf8) }
            let file = MerkleTreeFile.make(leaves: leaves)
            #expect(MerkleTreeFile.root(file) == MerkleTree.root(leaves), "\(count) leaves")
            #expect(MerkleTreeFile.leafCount(header: Array(file.prefix(24))) == count)
            let hashes = leaves.map(MerkleTree.leafHash)
            var reads = 0
            for index in leaves.indices {
                let proof = MerkleTreeFile.proof(index: index, count: count) { offset, length in
                    reads += 1
                    return Array(file[offset..<min(file.count, offset + length)])
                }
                #expect(proof == MerkleTree.inclusionProof(index: index, hashes: hashes), "\(index) of \(count)")
            }
            // One read per level at most.
            #expect(reads <= count * max(1, MerkleTreeFile.levelCounts(count).count))
            #expect(MerkleTreeFile.proof(index: count, count: count) { _, _ in [] } == nil)
        }
        #expect(MerkleTreeFile.leafCount(header: Array(repeating: 0, count: 24)) == nil)
    }

    @Test func aReceiptHoldsAgainstTheGoldenFilesAndNotOnceChanged() throws {
        let (description, results) = try Self.goldenDraw()
        let frozen = results.map(\.entry).sorted { $0.id.lexicographicallyPrecedes($1.id) }
        let file = MerkleTreeFile.make(leaves: frozen.map(\.leaf))
        #expect(MerkleTreeFile.root(file) == description.root)
        for result in results {
            let index = try #require(frozen.firstIndex(of: result.entry))
            let proof = try #require(MerkleTreeFile.proof(index: index, count: frozen.count) { Array(file[$0..<($0 + $1)]) })
            let receipt = DrawReceipt(registrationID: "r\(result.rank)", campaignID: "golden", entry: result.entry, leafIndex: index,
                                      entryCount: frozen.count, root: description.root, proof: proof, rank: result.rank,
                                      ticket: result.ticket, wonSlot: result.wonSlot, reservationID: result.wonSlot.map { _ in "booked" })
            #expect(try DrawReceipt(json: receipt.json) == receipt)
            #expect(receipt.verify(description: description, results: results) == nil)
            var changed = receipt
            changed.ticket[0] ^= 1
            #expect(changed.verify(description: description)?.contains("ticket") == true)
            changed = receipt
            changed.leafIndex = (index + 1) % frozen.count
            #expect(changed.verify(description: description)?.contains("proof") == true)
            changed = receipt
            changed.entry.preferences = [.site("elsewhere")]
            #expect(changed.verify(description: description)?.contains("proof") == true)
            changed = receipt
            changed.wonSlot = result.wonSlot == nil ? "s0" : nil
            #expect(changed.verify(description: description, results: results) != nil)
            changed = receipt
            changed.rank = result.rank % results.count + 1
            #expect(changed.verify(description: description, results: results) != nil)
        }
        // The leaf must be the entry's own.
        var json = String(decoding: DrawReceipt(registrationID: "r", campaignID: "golden", entry: results[0].entry, leafIndex: 0,
                                                entryCount: 6, root: description.root, proof: [], rank: 1, ticket: results[0].ticket,
                                                wonSlot: nil, reservationID: nil).json, as: UTF8.self)
        json = json.replacingOccurrences(of: #""leaf":""#, with: #""leaf":"00"#)
        #expect(throws: DrawFileError.self) { try DrawReceipt(json: Array(json.utf8)) }
    }

    // MARK: golden vectors

    static let vectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors/draw-golden")

    static func file(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: vectors.appendingPathComponent(name))) }

    /// The golden draw, made by the Swift code from the same inputs as
    /// make_vectors.py.
    static func goldenDraw() throws -> (DrawDescription, [Draw.Result]) {
        let inputs = try #require(try JSONSerialization.jsonObject(with: Data(file("citizens.json"))) as? [String: Any])
        let serverSecret = try #require(HexBytes.decode(Substring(inputs["server_secret"] as? String ?? "")))
        let citizens = try #require(inputs["citizen_keys"] as? [String])
        let preferences = try #require(inputs["preferences"] as? [String: [String]])
        let drawKey = Draw.drawKey(serverSecret: serverSecret, campaignID: "golden")
        let entries = try citizens.map { citizen in
            Draw.Entry(id: Draw.entryID(citizenKey: citizen, drawKey: drawKey),
                       preferences: try (preferences[citizen] ?? []).map { try #require(Draw.Preference(Substring($0))) })
        }
        let places = [Draw.Place(slotID: "s0", siteID: "hall", capacity: 1), Draw.Place(slotID: "s1", siteID: "hall", capacity: 2),
                      Draw.Place(slotID: "s2", siteID: "annex", capacity: 1)]
        let secret = Array(UInt8(0)..<32)
        let source = "drand quicknet round 1234", value = "5a9d3c0f"
        let rules = Draw.rulesDigest(campaignID: "golden", places: places, publicValueSource: source)
        let root = MerkleTree.root(Draw.leaves(entries))
        let seed = Draw.seed(rules: rules, secret: secret, root: root, publicValue: value)
        let description = DrawDescription(campaignID: "golden", places: places, commitment: Draw.commitment(rules: rules, secret: secret),
                                          secret: secret, publicValueSource: source, publicValue: value, entryCount: entries.count,
                                          root: root, seed: seed)
        return (description, Draw.run(entries: entries, places: places, seed: seed))
    }

    @Test func theSwiftDrawMakesTheGoldenFiles() throws {
        let (description, results) = try Self.goldenDraw()
        #expect(description.json == (try Self.file("draw.json")))
        #expect(ResultsFile.write(results) == (try Self.file("results.csv")))
        #expect(try DrawDescription(json: Self.file("draw.json")) == description)
        #expect(try ResultsFile.read(Self.file("results.csv")) == results)
        #expect(DrawVerifier.verify(description: description, results: results) == nil)
        // Four places, six entries: four win, in ticket order, each their
        // first preference with a place left; the other two wait.
        #expect(results.compactMap(\.wonSlot) == ["s2", "s0", "s1", "s1"])
    }

    @Test func verifyRefusesAnyChangedCharacter() throws {
        let description = try DrawDescription(json: Self.file("draw.json"))
        let csv = try Self.file("results.csv")
        // Every character of every row (the header aside), changed once.
        let firstRow = try #require(csv.firstIndex(of: UInt8(ascii: "\n"))) + 1
        var checked = 0
        for index in firstRow..<csv.count where csv[index] != UInt8(ascii: "\r") && csv[index] != UInt8(ascii: "\n")
            && csv[index] != UInt8(ascii: ",") {
            var changed = csv
            changed[index] = csv[index] == UInt8(ascii: "1") ? UInt8(ascii: "2") : UInt8(ascii: "1")
            let refused: Bool
            if let rows = try? ResultsFile.read(changed) {
                refused = DrawVerifier.verify(description: description, results: rows) != nil
            } else {
                refused = true
            }
            #expect(refused, "byte \(index) changed was accepted")
            checked += 1
        }
        #expect(checked > 400)
        // Two rows swapped, a row dropped, a row added twice.
        let results = try ResultsFile.read(csv)
        var swapped = results
        swapped.swapAt(0, 1)
        #expect(DrawVerifier.verify(description: description, results: swapped) != nil)
        #expect(DrawVerifier.verify(description: description, results: Array(results.dropLast())) != nil)
        // The description's every input, changed.
        var other = description
        other.secret[0] ^= 1
        #expect(DrawVerifier.verify(description: other, results: results)?.contains("commitment") == true)
        // A blank line, or spacing written another way: not the file allot writes.
        #expect(throws: DrawFileError.self) { try ResultsFile.read(csv + Array("\r\n".utf8)) }
        #expect(throws: DrawFileError.self) { try ResultsFile.read(Array(String(decoding: csv, as: UTF8.self).replacingOccurrences(of: "s0 site:hall", with: "s0  site:hall").utf8)) }
        other = description
        other.publicValue += "x"
        #expect(DrawVerifier.verify(description: other, results: results)?.contains("seed") == true)
        // The places or the campaign changed after the commitment: refused,
        // even with outcomes that would fit them.
        other = description
        other.places[0].capacity += 1
        #expect(DrawVerifier.verify(description: other, results: results)?.contains("commitment") == true)
        other = description
        other.places.swapAt(0, 1)
        #expect(DrawVerifier.verify(description: other, results: results)?.contains("commitment") == true)
        other = description
        other.campaignID = "other"
        #expect(DrawVerifier.verify(description: other, results: results)?.contains("commitment") == true)
        other = description
        other.root[5] ^= 1
        #expect(DrawVerifier.verify(description: other, results: results)?.contains("root") == true)
    }
}

/// The bias report (issue 14): a fair draw passes; one that favours the
/// early registrations, as the 2011 US visa lottery did, is flagged.
struct BiasReportTests {
    static func registrations(_ count: Int, overHours hours: Int) -> [LotteryDraw.Registration] {
        (0..<count).map { index in
            LotteryDraw.Registration(id: "r\(index)", citizenKey: String(index, radix: 16), preferences: [.site("hall")],
                                     createdAtMillis: 1_800_000_000_000 + Int64(index) * Int64(hours) * 3_600_000 / Int64(count))
        }
    }

    @Test func aFairDrawPassesAndAnEarlyBirdDrawIsFlagged() {
        let places = [Draw.Place(slotID: "s0", siteID: "hall", capacity: 300), Draw.Place(slotID: "s1", siteID: "kiosk", capacity: 10)]
        let registrations = Self.registrations(3_000, overHours: 72)
        let fair = LotteryDraw(campaignID: "c", places: places, secret: Array(repeating: 7, count: 32), publicValueSource: "x",
                               publicValue: "y", drawKey: Array(repeating: 1, count: 32), registrations: registrations)
        #expect(fair.bias.periodMillis == 3_600_000 && fair.bias.byPeriod.count == 72)
        #expect(!fair.bias.suspicious, "chi-square \(fair.bias.chiSquare)")
        #expect(fair.bias.byPeriod.reduce(0) { $0 + $1.winners } == 300)
        #expect(fair.bias.bySite.first { $0.key == "hall" }?.entries == 3_000)
        // The same results, the places given to the first 300 to register.
        var rigged = fair.results
        for index in rigged.indices { rigged[index].wonSlot = nil }
        for (index, registration) in fair.registrations.enumerated() where Int(registration.id.dropFirst())! < 300 {
            rigged[index].wonSlot = "s0"
        }
        let report = BiasReport(results: rigged, registrations: fair.registrations, siteOfSlot: ["s0": "hall", "s1": "kiosk"])
        #expect(report.suspicious, "chi-square \(report.chiSquare)")
        // Registrations over less than a day: 24 equal periods of their span.
        let short = LotteryDraw(campaignID: "c", places: places, secret: Array(repeating: 7, count: 32), publicValueSource: "x",
                                publicValue: "y", drawKey: Array(repeating: 1, count: 32),
                                registrations: Self.registrations(2_400, overHours: 1))
        #expect(short.bias.byPeriod.count == 24 && short.bias.degreesOfFreedom == 23 && !short.bias.suspicious)
        // The critical values against the chi-square table (p = 0.001).
        for (k, table) in [(1, 10.828), (2, 13.816), (5, 20.515), (10, 29.588), (23, 49.728), (71, 112.317)] {
            #expect(abs(BiasReport.criticalValue(degreesOfFreedom: k) - table) / table < 0.02, "k=\(k)")
        }
    }
}
