@testable import allot_load
import AllotDomain
import EventHTTP
import Foundation
import Testing

/// The harness's pure parts: if these were wrong, its verdicts would be.
@Suite struct HarnessLogicTests {
    @Test func citizenIDsAreValidAndTraceBackToTheirCitizen() {
        for index in [0, 1, 999, 1_000, 123_456, 999_999, 4_999_999] {
            let id = CitizenIDs.make(index)
            #expect(IDScheme.cnResident.normalize(id) == id, "\(id)")
            #expect(CitizenIDs.index(of: Array(id.utf8)) == index)
        }
        #expect(Set((0..<5_000).map(CitizenIDs.make)).count == 5_000)
        // A valid number that is not one of ours is not claimed.
        #expect(CitizenIDs.index(of: Array("11010519491231002X".utf8)) == nil)
    }

    /// Front nodes given as `--url`s: each read as host and port; anything
    /// else refused before a request is sent.
    @Test func frontNodeURLsAreReadOrRefused() throws {
        #expect(try Endpoint(url: "http://127.0.0.1:8080") == Endpoint(host: "127.0.0.1", port: 8080))
        #expect(try Endpoint(url: "http://node-2.example:9000/") == Endpoint(host: "node-2.example", port: 9000))
        for bad in ["127.0.0.1:8080", "http://127.0.0.1", "https://127.0.0.1:8443", "http://127.0.0.1:70000", ""] {
            #expect(throws: HarnessError.self, "\(bad)") { try Endpoint(url: bad) }
        }
    }

    @Test func reservationBodiesAreTheJSONTheServerReads() throws {
        let plan = CampaignPlan(id: "c", slots: ["s0", "hall-2-h09"], capacityPerSlot: 1, perCitizenLimit: 1)
        let body = plan.body(citizen: 123_456, slot: 1)
        let decoded = try ReserveRequest.decode(body)
        #expect(decoded.citizenID == CitizenIDs.make(123_456))
        #expect(decoded.slotID == "hall-2-h09")
        #expect(plan.reservePath == "/v1/campaigns/c/reservations")
    }

    @Test func answersNameTheFieldAskedForOnly() {
        let body = Array(#"{"xid": "no", "id" : "R1", "code":"slot_full", "id2":"x"}"#.utf8)
        #expect(Answer.stringField("id", in: body) == "R1")
        #expect(Answer.stringField("code", in: body) == "slot_full")
        #expect(Answer.stringField("status", in: body) == nil)
        #expect(Answer.stringField("id", in: Array(#"{"id":1}"#.utf8)) == nil)
        #expect(Answer.stringField("id", in: Array(#""id""#.utf8)) == nil)
    }

    @Test func privacyScanFindsAnIDAnywhereAndNothingElse() {
        let id = CitizenIDs.make(4_242)
        let planted = Data("x|\(id.lowercased())|0123456789abcdef0123456789abcdef".utf8)
        #expect(Verifier.firstCitizenID(in: planted, citizens: 10_000) == 4_242)
        #expect(Verifier.firstCitizenID(in: Data("00\(id)99".utf8), citizens: 10_000) == 4_242)
        // Beyond the run's citizens, and digits that are not an id: nothing.
        #expect(Verifier.firstCitizenID(in: planted, citizens: 4_000) == nil)
        let keys = Data((0..<2_000).map { _ in "01234567890123456789" }.joined(separator: "|").utf8)
        #expect(Verifier.firstCitizenID(in: keys, citizens: 1_000_000) == nil)
    }

    @Test func zipfPrefersLowRanksAndCoversAll() {
        let zipf = Zipf(count: 10, exponent: 1.0)
        var random = SeededRandom(seed: 7)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<100_000 { counts[zipf.sample(random.unit())] += 1 }
        #expect(counts.allSatisfy { $0 > 0 })
        #expect(counts[0] > 3 * counts[9])
        // Rank 0 has 1 / H(10) ≈ 34 % of the draws.
        #expect(abs(Double(counts[0]) / 100_000 - 0.341) < 0.01)
    }

    @Test func answersAreReadWithoutAParser() {
        let created = HTTPClientConnection.Response(
            status: 201, body: Array(#"{"id": "01M818MGYNHM5WM7SR94B7ADZR","campaign_id":"c"}"#.utf8), retryAfterSeconds: nil)
        #expect(Answer(created).id == "01M818MGYNHM5WM7SR94B7ADZR")
        #expect(Answer(created).label == "201")
        let full = HTTPClientConnection.Response(
            status: 409, body: Array(#"{"type":"/problems/slot-full","status":409,"code":"slot_full"}"#.utf8), retryAfterSeconds: nil)
        #expect(Answer(full).label == "409 slot_full")
        #expect(Answer(HTTPClientConnection.Response(status: 0, body: [], retryAfterSeconds: nil)).label == "0 transport")
    }

    @Test func retryHeapPopsInTimeOrder() {
        var heap = MinHeap()
        var random = SeededRandom(seed: 3)
        let times = (0..<1_000).map { _ in Int64(random.next() % 1_000_000) }
        for (index, time) in times.enumerated() { heap.push(at: time, citizen: index) }
        var popped: [Int64] = []
        while let next = heap.pop() { popped.append(next.at) }
        #expect(popped == times.sorted())
    }

    @Test func frontLoadedArrivalsComeMostlyEarly() {
        let plan = CampaignPlan(id: "c", slots: ["s0"], capacityPerSlot: 1, perCitizenLimit: 1)
        let workload = SurgeWorkload(settings: .init(plan: plan, citizens: 10_000, arrivalSeconds: 20, frontLoaded: true,
                                                     zipfExponent: 1, replayFraction: 0, duplicateFraction: 0, seed: 1),
                                     ledger: Ledger(), thread: 0, threads: 1, startMicros: 0)
        var arrivedBy5s = 0
        while workload.next(nowMicros: 5_000_000) != nil { arrivedBy5s += 1 }
        // A truncated exponential with τ = window / 4: 1 − e^−1 of the mass
        // in the first quarter, renormalised: ≈ 64 %.
        #expect(abs(Double(arrivedBy5s) / 10_000 - 0.644) < 0.01)
    }

    @Test func aFaultScheduleIsReplayedByItsSeed() {
        let kinds = FaultKind.allCases
        let short = FaultSchedule.make(seed: 7, count: kinds.count, spacingSeconds: 6, warmupSeconds: 3, kinds: kinds)
        #expect(Set(short.map(\.kind)) == Set(kinds), "the short schedule has every fault once")
        #expect(short.map(\.atSeconds) == short.map(\.atSeconds).sorted())
        let again = FaultSchedule.make(seed: 7, count: kinds.count, spacingSeconds: 6, warmupSeconds: 3, kinds: kinds)
        #expect(again.map(\.kind) == short.map(\.kind) && again.map(\.atSeconds) == short.map(\.atSeconds)
                && again.map(\.holdSeconds) == short.map(\.holdSeconds))
        let long = FaultSchedule.make(seed: 8, count: 30, spacingSeconds: 6, warmupSeconds: 3, kinds: kinds)
        #expect(long.count == 30)
        #expect(long.prefix(kinds.count).map(\.kind) != short.map(\.kind) || long.map(\.atSeconds) != short.map(\.atSeconds))
    }

    @Test func thePrivacyScanSeesEveryFileBelowItsDirectory() throws {
        let directory = NSTemporaryDirectory() + "allot-scan-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/a/b", withIntermediateDirectories: true)
        for path in ["top.log", "a/one.db", "a/b/two.aof"] {
            FileManager.default.createFile(atPath: directory + "/" + path, contents: Data("x".utf8))
        }
        #expect(Verifier.files(under: directory) == ["a/b/two.aof", "a/one.db", "top.log"])
    }
}
