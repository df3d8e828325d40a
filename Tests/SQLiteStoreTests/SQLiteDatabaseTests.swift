import Foundation
import SQLiteStore
import Testing

/// The SQLite layer on a real file in a temporary directory.
@Suite struct SQLiteDatabaseTests {
    func withDatabase(_ body: (SQLiteDatabase) throws -> Void) throws {
        let directory = NSTemporaryDirectory() + "sqlite-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = try SQLiteDatabase(path: directory + "/test.db")
        try database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        try body(database)
    }

    @Test func textIsStoredWholeNULsAndAllAndReadBackWhole() throws {
        try withDatabase { database in
            let texts = ["a\u{0}b", "", "Masks — 第12週 ✓", String(repeating: "x", count: 100_000)]
            let insert = try database.statement("INSERT INTO t (id, name) VALUES (?, ?)")
            for (index, text) in texts.enumerated() { try insert.run([.integer(Int64(index)), .text(text)]) }
            let stored = try database.statement("SELECT name, length(CAST(name AS BLOB)) FROM t ORDER BY id").rows { row in
                (row.text(0), row.int(1))
            }
            #expect(stored.map(\.0) == texts)
            #expect(stored.map(\.1) == texts.map { Int64($0.utf8.count) })
        }
    }

    @Test func aTransactionThatThrowsLeavesNothingBehind() throws {
        struct Stop: Error {}
        try withDatabase { database in
            // A body that always throws: `T` is `Never` (see `transaction`).
            #expect(throws: Stop.self) {
                try database.transaction {
                    try database.statement("INSERT INTO t (id, name) VALUES (1, 'one')").run()
                    throw Stop()
                }
            }
            #expect(throws: Stop.self) {
                try database.transaction { () throws -> Int in
                    try database.statement("INSERT INTO t (id, name) VALUES (3, 'three')").run()
                    throw Stop()
                }
            }
            try database.transaction { try database.statement("INSERT INTO t (id, name) VALUES (2, 'two')").run() }
            #expect(try database.statement("SELECT id FROM t").rows { $0.int(0) } == [2])
        }
    }

    @Test func aStatementIsReusedWithNewBindingsAndErrorsSaySo() throws {
        try withDatabase { database in
            let insert = try database.statement("INSERT INTO t (id, name) VALUES (?, ?)")
            for index in 0..<100 { try insert.run([.integer(Int64(index)), .text("n\(index)")]) }
            var seen = 0
            try database.statement("SELECT id FROM t WHERE id >= ?").forEachRow([.integer(90)]) { _ in seen += 1 }
            #expect(seen == 10)
            #expect(throws: SQLiteError.self) { try insert.run([.integer(5), .text("again")]) }
            #expect(throws: SQLiteError.self) { try database.statement("SELECT nothing FROM nowhere") }
        }
    }
}
