@testable import AllotDomain
import Testing

/// The seal over reservation events (EventLedger.swift), with the stored
/// rows held in memory: what `allot audit verify` names for each tampering.
@Suite struct EventLedgerTests {
    struct Row {
        var seq: Int64
        var reservation = "r"
        var status = "confirmed"
        var actor = "citizen"
        var leaf: [UInt8] = []
    }

    func withFields<T>(_ row: Row, _ body: (EventLedger.Fields) -> T) -> T {
        let texts = ["camp", row.reservation, row.status, "s1", "hall", row.actor].map { Array($0.utf8) }
        return texts[0].withUnsafeBytes { c in texts[1].withUnsafeBytes { r in texts[2].withUnsafeBytes { st in
            texts[3].withUnsafeBytes { sl in texts[4].withUnsafeBytes { si in texts[5].withUnsafeBytes { a in
                body(EventLedger.Fields(seq: row.seq, campaign: c, reservation: r, status: st, slot: sl, site: si,
                                        actor: a, atMillis: 1_700_000_000_000 + row.seq))
            } } } } } }
    }

    /// Rows 1…n sealed in batches of the given sizes, as the persister writes them.
    func sealed(_ batchSizes: [Int]) -> (rows: [Row], claims: [EventLedger.BatchClaim]) {
        var maker = EventLedger.LeafMaker()
        var rows: [Row] = []
        var claims: [EventLedger.BatchClaim] = []
        var seq: Int64 = 0
        for (index, size) in batchSizes.enumerated() {
            var root = EventLedger.RootHasher()
            let first = seq + 1
            for _ in 0..<size {
                seq += 1
                var row = Row(seq: seq, reservation: "r\(seq)")
                let leaf = withFields(row) { maker.leaf($0) }
                root.add(leaf)
                row.leaf = leaf.withBytes { Array($0) }
                rows.append(row)
            }
            claims.append(EventLedger.BatchClaim(auditID: Int64(10 + index), firstSeq: first, lastSeq: seq, root: root.root()))
        }
        return (rows, claims)
    }

    func verdict(_ rows: [Row], _ claims: [EventLedger.BatchClaim]) -> EventLedgerVerifier.Break? {
        var verifier = EventLedgerVerifier(claims: claims)
        for row in rows {
            if let broken = withFields(row, { verifier.check($0, storedLeaf: row.leaf) }) { return broken }
        }
        return verifier.finish()
    }

    @Test func intactEventsVerify() {
        let (rows, claims) = sealed([3, 1, 4])
        #expect(verdict(rows, claims) == nil)
        #expect(verdict([], []) == nil)
    }

    @Test func eachTamperingIsNamed() {
        let (rows, claims) = sealed([3, 1, 4])
        var edited = rows
        edited[4].status = "redeemed"
        #expect(verdict(edited, claims) == .eventEdited(seq: 5))
        var actor = rows
        actor[0].actor = "token:mallory"
        #expect(verdict(actor, claims) == .eventEdited(seq: 1))
        var deleted = rows
        deleted.remove(at: 3)
        #expect(verdict(deleted, claims) == .eventMissing(seq: 4))
        #expect(verdict(Array(rows.dropLast()), claims) == .eventMissing(seq: 8))
        var inserted = rows
        inserted.append(Row(seq: 9, leaf: rows[7].leaf))
        #expect(verdict(inserted, claims) == .eventInserted(seq: 9))
        // An edit that also rewrites the leaf changes the root its batch sealed.
        var rewritten = rows
        rewritten[5].status = "cancelled"
        var maker = EventLedger.LeafMaker()
        rewritten[5].leaf = withFields(rewritten[5]) { maker.leaf($0) }.withBytes { Array($0) }
        #expect(verdict(rewritten, claims) == .batchAltered(auditID: 12))
    }

    @Test func fieldsCannotRunIntoEachOther() {
        var maker = EventLedger.LeafMaker()
        let a = withFields(Row(seq: 1, reservation: "ab", status: "c")) { maker.leaf($0) }
        let b = withFields(Row(seq: 1, reservation: "a", status: "bc")) { maker.leaf($0) }
        #expect(a != b)
    }

    @Test func claimsRoundTripThroughTheAuditRow() {
        let claim = EventLedger.BatchClaim(auditID: 7, firstSeq: 3, lastSeq: 9, root: String(repeating: "ab", count: 32))
        #expect(claim.json == #"{"events":7,"first_seq":3,"last_seq":9,"root":"\#(String(repeating: "ab", count: 32))"}"#)
        #expect(EventLedger.BatchClaim(auditID: 7, action: EventLedger.batchAction, after: claim.json) == claim)
        #expect(EventLedger.BatchClaim(auditID: 7, action: "campaign.patch", after: claim.json) == nil)
    }
}
