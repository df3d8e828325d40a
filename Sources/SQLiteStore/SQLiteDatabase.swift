import CSQLite

public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    public var description: String { "SQLite error \(code): \(message)" }
    public var isBusy: Bool { code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED }
}

/// One SQLite connection, used by one thread at a time (it is not shared:
/// the persister and the admin worker each open their own). Holds no rules
/// of Allot's; `Schema` and the stores above it do.
public final class SQLiteDatabase {
    let handle: OpaquePointer
    private var statements: [String: SQLiteStatement] = [:]

    /// Process-wide settings, made once before the first connection.
    private static let configured: Bool = {
        allot_sqlite_disable_memory_statistics() == SQLITE_OK
    }()

    public init(path: String, busyTimeoutMillis: Int32 = 5_000) throws {
        _ = Self.configured
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw SQLiteError(code: status, message: message)
        }
        self.handle = handle
        sqlite3_busy_timeout(handle, busyTimeoutMillis)
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit {
        statements.removeAll()
        sqlite3_close_v2(handle)
    }

    public func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &message)
        guard status == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? "unknown"
            sqlite3_free(message)
            throw SQLiteError(code: status, message: text)
        }
    }

    /// A prepared statement, cached by its text for the life of the
    /// connection (the hot statements are prepared once).
    /// Rows the last INSERT/UPDATE/DELETE changed (0 when an upsert did nothing).
    public var changes: Int { Int(sqlite3_changes(handle)) }

    public func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        var raw: OpaquePointer?
        let status = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard status == SQLITE_OK, let raw else { throw error(status) }
        let statement = SQLiteStatement(raw: raw, database: self)
        statements[sql] = statement
        return statement
    }

    /// Runs `body` in one IMMEDIATE transaction: committed if it returns,
    /// rolled back if it throws. The rollback is a `defer`, not a `catch`: a
    /// body that always throws makes `T` `Never`, and the compiler then
    /// skipped a `catch` here (SQLiteDatabaseTests keeps that case).
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        var committed = false
        defer { if !committed { try? execute("ROLLBACK") } }
        let result = try body()
        try execute("COMMIT")
        committed = true
        return result
    }

    /// Like `transaction`, but BEGIN waits until `body` first calls `begin`:
    /// a body that finds nothing to write takes no write lock (the
    /// persister reads Redis inside it and writes only what it got).
    public func transaction<T>(begunOnDemand body: (_ begin: () throws -> Void) throws -> T) throws -> T {
        var begun = false, committed = false
        defer { if begun && !committed { try? execute("ROLLBACK") } }
        let result = try body {
            guard !begun else { return }
            try execute("BEGIN IMMEDIATE")
            begun = true
        }
        if begun {
            try execute("COMMIT")
            committed = true
        }
        return result
    }

    /// Runs `body` in one read transaction: in WAL mode every statement in
    /// it sees the same committed state, whatever other connections commit
    /// meanwhile (a check that reads two tables must not see one of them
    /// later than the other).
    public func readSnapshot<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN DEFERRED")
        defer { try? execute("COMMIT") }
        return try body()
    }

    func error(_ status: Int32) -> SQLiteError {
        SQLiteError(code: status, message: String(cString: sqlite3_errmsg(handle)))
    }
}

public enum SQLiteValue: Equatable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
}

public final class SQLiteStatement {
    private let raw: OpaquePointer
    private unowned let database: SQLiteDatabase

    init(raw: OpaquePointer, database: SQLiteDatabase) {
        self.raw = raw
        self.database = database
    }

    deinit { sqlite3_finalize(raw) }

    func reset() {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
    }

    /// Binds parameters 1…n in order.
    @discardableResult
    public func bind(_ values: [SQLiteValue]) throws -> SQLiteStatement {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(raw, index)
            case .integer(let number): status = sqlite3_bind_int64(raw, index, number)
            case .real(let number): status = sqlite3_bind_double(raw, index, number)
            case .text(let text): status = bindText(text, at: index)
            }
            guard status == SQLITE_OK else { throw database.error(status) }
        }
        return self
    }

    /// Binds by byte count, not up to the first NUL: a text is stored whole
    /// or not at all, never cut.
    private func bindText(_ text: String, at index: Int32) -> Int32 {
        var text = text
        return text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { characters in
                guard let base = characters.baseAddress else { return sqlite3_bind_text(raw, index, "", 0, nil) }
                return sqlite3_bind_text(raw, index, base, Int32(clamping: characters.count), allot_sqlite_transient())
            }
        }
    }

    /// Steps once: true while a row is available.
    public func step() throws -> Bool {
        let status = sqlite3_step(raw)
        switch status {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = database.error(status)
            sqlite3_reset(raw)
            throw error
        }
    }

    /// Runs to completion (for statements without rows).
    public func run(_ values: [SQLiteValue] = []) throws {
        try bind(values)
        while try step() {}
        sqlite3_reset(raw)
    }

    /// Binds through `binding` (parameters 1…n in the order it binds them),
    /// runs to completion, then clears the bindings. Bytes bound without a
    /// copy need stay valid only during this call: the hot writes bind
    /// slices of a Redis reply this way, with no String per field.
    public func run(binding: (inout SQLiteBinder) throws -> Void) throws {
        var binder = SQLiteBinder(raw: raw)
        defer {
            sqlite3_reset(raw)
            sqlite3_clear_bindings(raw)
        }
        try binding(&binder)
        if let status = binder.failure { throw database.error(status) }
        while try step() {}
    }

    public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(raw, column) }
    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(raw, column) == SQLITE_NULL }

    /// A text column, whole (by its byte count, NULs included).
    public func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(raw, column) else { return "" }
        let count = Int(sqlite3_column_bytes(raw, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// A blob column (a copy).
    public func blob(_ column: Int32) -> [UInt8] {
        guard let pointer = sqlite3_column_blob(raw, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(raw, column))))
    }

    /// Hands each row to `body` as it is stepped (no row is kept).
    public func forEachRow(_ values: [SQLiteValue] = [], _ body: (SQLiteStatement) throws -> Void) throws {
        try bind(values)
        defer { sqlite3_reset(raw) }
        while try step() { try body(self) }
    }

    /// Collects every row through `row`.
    public func rows<T>(_ values: [SQLiteValue] = [], _ row: (SQLiteStatement) -> T) throws -> [T] {
        try bind(values)
        var result: [T] = []
        while try step() { result.append(row(self)) }
        sqlite3_reset(raw)
        return result
    }
}

/// Binds a statement's parameters in order (`SQLiteStatement.run(binding:)`).
public struct SQLiteBinder {
    fileprivate let raw: OpaquePointer
    private var index: Int32 = 1
    /// The first failed bind's status.
    fileprivate var failure: Int32?

    fileprivate init(raw: OpaquePointer) { self.raw = raw }

    /// Text by byte count, not copied (SQLITE_STATIC): `bytes` must outlive
    /// the `run(binding:)` call.
    public mutating func text(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: CChar.self), !bytes.isEmpty else {
            return record(sqlite3_bind_text(raw, index, "", 0, nil))
        }
        record(sqlite3_bind_text(raw, index, base, Int32(clamping: bytes.count), nil))
    }

    /// Text copied by SQLite (SQLITE_TRANSIENT).
    public mutating func text(_ text: String) {
        var text = text
        let status = text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { characters in
                guard let base = characters.baseAddress else { return sqlite3_bind_text(raw, index, "", 0, nil) }
                return sqlite3_bind_text(raw, index, base, Int32(clamping: characters.count), allot_sqlite_transient())
            }
        }
        record(status)
    }

    /// A blob, not copied: `bytes` must outlive the `run(binding:)` call.
    public mutating func blob(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return record(sqlite3_bind_zeroblob(raw, index, 0)) }
        record(sqlite3_bind_blob(raw, index, base, Int32(clamping: bytes.count), nil))
    }

    public mutating func integer(_ value: Int64) { record(sqlite3_bind_int64(raw, index, value)) }

    public mutating func null() { record(sqlite3_bind_null(raw, index)) }

    private mutating func record(_ status: Int32) {
        if status != SQLITE_OK, failure == nil { failure = status }
        index += 1
    }
}
