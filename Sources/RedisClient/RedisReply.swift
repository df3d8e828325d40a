import CHiredis

/// A Redis reply copied out of hiredis's borrowed `redisReply` (hiredis frees
/// its reply when the callback returns).
public enum RedisReply: Equatable, Sendable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    case null
    case error(String)

    /// Replies nested deeper than this are refused: Allot's scripts return
    /// at most two levels.
    static let depthMax = 8

    init(copying reply: UnsafePointer<redisReply>, depth: Int = 0) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            self = .string(Self.bytes(r.str, r.len))
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: Self.bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: Self.bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            self = .integer(r.integer)
        case REDIS_REPLY_ARRAY where depth < Self.depthMax:
            var elements: [RedisReply] = []
            elements.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                if let element = r.element[index] { elements.append(RedisReply(copying: element, depth: depth + 1)) }
                else { elements.append(.null) }
            }
            self = .array(elements)
        case REDIS_REPLY_ARRAY:
            self = .error("reply nested deeper than \(Self.depthMax)")
        default:
            self = .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }

    // MARK: reading replies

    public var text: String? {
        switch self {
        case .string(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        case .integer(let value): return String(value)
        default: return nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let value): return value
        case .string(let bytes): return Int64(String(decoding: bytes, as: UTF8.self))
        default: return nil
        }
    }

    public var elements: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// An array of field/value pairs (HGETALL) as a dictionary.
    public var pairs: [String: String]? {
        guard let elements, elements.count % 2 == 0 else { return nil }
        var result: [String: String] = [:]
        result.reserveCapacity(elements.count / 2)
        for index in stride(from: 0, to: elements.count, by: 2) {
            guard let key = elements[index].text, let value = elements[index + 1].text else { return nil }
            result[key] = value
        }
        return result
    }
}

/// Why a command got no reply.
public enum RedisFailure: Error, Equatable, Sendable {
    /// Not connected (or the connection dropped with the command in flight).
    case disconnected
    /// No reply within the command deadline; the connection was dropped.
    case timeout
}

/// A C argv that grows and is reused, for a client that sends many commands
/// from one thread: no allocation per command once warm. Not copyable: it
/// owns its memory and frees it once, when it goes away.
struct ArgvBuffer: ~Copyable {
    private var storage = UnsafeMutablePointer<CChar>.allocate(capacity: 1024)
    private var storageCapacity = 1024
    private var pointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: 32)
    private var lengths = UnsafeMutablePointer<Int>.allocate(capacity: 32)
    private var slotsCapacity = 32

    init() {}

    deinit {
        storage.deallocate()
        pointers.deallocate()
        lengths.deallocate()
    }

    mutating func with<T>(_ arguments: [String], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T) -> T {
        var total = 0
        for argument in arguments { total += argument.utf8.count }
        if total > storageCapacity {
            storage.deallocate()
            storageCapacity = max(total, storageCapacity * 2)
            storage = .allocate(capacity: storageCapacity)
        }
        if arguments.count > slotsCapacity {
            pointers.deallocate()
            lengths.deallocate()
            slotsCapacity = max(arguments.count, slotsCapacity * 2)
            pointers = .allocate(capacity: slotsCapacity)
            lengths = .allocate(capacity: slotsCapacity)
        }
        var offset = 0
        for (index, argument) in arguments.enumerated() {
            let count = argument.utf8.count
            let destination = UnsafeMutableRawPointer(storage.advanced(by: offset))
            // Native strings are contiguous UTF-8; a bridged one is copied byte by byte.
            if count > 0, argument.utf8.withContiguousStorageIfAvailable({
                destination.copyMemory(from: $0.baseAddress!, byteCount: count)
            }) == nil {
                _ = UnsafeMutableRawBufferPointer(start: destination, count: count).copyBytes(from: argument.utf8)
            }
            pointers[index] = UnsafePointer(storage.advanced(by: offset))
            lengths[index] = count
            offset += count
        }
        return body(Int32(arguments.count), pointers, lengths)
    }
}

/// A reply read where hiredis keeps it, without copying: valid only inside
/// the closure that hands it out (`RedisSyncClient.withReply`). For replies
/// read in bulk (a persister's batch of stream entries), where a copy per
/// field would cost more than the work done with it.
public struct RedisReplyView {
    private let reply: UnsafePointer<redisReply>

    init(_ reply: UnsafePointer<redisReply>) { self.reply = reply }

    public var isArray: Bool { reply.pointee.type == REDIS_REPLY_ARRAY }
    public var isError: Bool { reply.pointee.type == REDIS_REPLY_ERROR }
    public var isString: Bool { reply.pointee.type == REDIS_REPLY_STRING || reply.pointee.type == REDIS_REPLY_STATUS }

    /// Elements of an array reply (0 for anything else).
    public var count: Int { isArray ? reply.pointee.elements : 0 }

    /// Element `index` of an array reply; nil out of range or for a nil element.
    public subscript(index: Int) -> RedisReplyView? {
        guard isArray, index >= 0, index < reply.pointee.elements, let element = reply.pointee.element[index] else { return nil }
        return RedisReplyView(element)
    }

    /// The bytes of a string, status or error reply (empty otherwise);
    /// borrowed, like the view.
    public var bytes: UnsafeRawBufferPointer {
        guard isString || isError, let pointer = reply.pointee.str, reply.pointee.len > 0 else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: pointer, count: reply.pointee.len)
    }

    /// An integer reply's value (nil for anything else).
    public var integer: Int64? { reply.pointee.type == REDIS_REPLY_INTEGER ? reply.pointee.integer : nil }

    /// Whether this is a string reply of exactly `text`'s bytes.
    public func isString(_ text: StaticString) -> Bool {
        isString && bytes.elementsEqual(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// A string reply as a String (a copy).
    public var text: String? { isString ? String(decoding: bytes, as: UTF8.self) : nil }

    public var errorMessage: String? { isError ? String(decoding: bytes, as: UTF8.self) : nil }

    /// A copy of the reply, for what is kept beyond the closure.
    public var copy: RedisReply { RedisReply(copying: reply) }

    /// Reads one reply from wire bytes with hiredis's own reader and lends
    /// it to `body`; nil when the reader refuses the bytes. For tests of
    /// what reads a borrowed reply.
    public static func parsing<T>(_ resp: [UInt8], _ body: (RedisReplyView) throws -> T) rethrows -> T? {
        guard let reader = redisReaderCreate() else { return nil }
        defer { redisReaderFree(reader) }
        _ = resp.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK, let parsed = raw else { return nil }
        defer { freeReplyObject(parsed) }
        return try body(RedisReplyView(parsed.assumingMemoryBound(to: redisReply.self)))
    }
}
