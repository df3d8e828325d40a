import CHTTPParser

/// Why a request could not be read. The application's handler answers each
/// with its problem+json (the Dispatcher), and the connection is closed
/// after it (the stream may be out of step).
public enum HTTPParseFailure: Equatable, Sendable {
    /// Not HTTP/1.x as RFC 9112 writes it (a bad request line, header, or
    /// chunk): 400.
    case malformed(String)
    /// A method the parser does not know: answered for its path (405 with
    /// the path's methods, or 404) once the request line is read, or 501
    /// when there is no target to read.
    case unknownMethod
    /// The request line and headers are over `headersBytesMax`, or there are
    /// more than `headersCountMax` headers: 431.
    case headersTooLarge
    /// The body is over `bodyBytesMax` (by its Content-Length, before it is
    /// read, or as chunks arrive): 413.
    case bodyTooLarge
    /// Not HTTP/1.x: 505.
    case versionNotSupported
}

/// One request as it arrived: method, target, headers and body. All four
/// share one byte buffer; strings are made only when asked for.
public struct HTTPRequest: Sendable {
    /// The method's name as sent (`GET`, `TRACE`, …).
    public let method: String
    let storage: [UInt8]
    let targetRange: Range<Int>
    let headerRanges: [(name: Range<Int>, value: Range<Int>)]
    let bodyRange: Range<Int>
    /// The body, where it was read (no copy).
    public var body: ArraySlice<UInt8> { storage[bodyRange] }
    /// Whether the connection may carry another request after this one
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 with keep-alive).
    public let keepAlive: Bool
    public let isHTTP10: Bool
    /// The parser stopped at a protocol switch (CONNECT, `Upgrade:`), which
    /// Allot does not do: the answer closes the connection.
    public let isUpgrade: Bool

    /// The request target as sent: path and query, not decoded.
    public var target: String { String(decoding: storage[targetRange], as: UTF8.self) }

    /// The first header of that name (names compare without case).
    public func header(_ name: String) -> String? {
        Self.header(name, in: storage, headerRanges)
    }

    static func header(_ name: String, in storage: [UInt8], _ headerRanges: [(name: Range<Int>, value: Range<Int>)]) -> String? {
        var wanted = name
        // Over the bytes in place: a lookup runs on most requests.
        return wanted.withUTF8 { wanted in
            storage.withUnsafeBufferPointer { stored in
                for (nameRange, valueRange) in headerRanges
                where equalIgnoringCase(UnsafeBufferPointer(rebasing: stored[nameRange]), wanted) {
                    return String(decoding: UnsafeBufferPointer(rebasing: stored[valueRange]), as: UTF8.self)
                }
                return nil
            }
        }
    }

    /// ASCII comparison without case, without making lower-cased copies.
    static func equalIgnoringCase(_ text: String, _ lowercase: StaticString) -> Bool {
        let other = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        guard text.utf8.count == other.count else { return false }
        return zip(text.utf8, other).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }

    public var headerCount: Int { headerRanges.count }

    static func equalIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ wanted: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count == wanted.count else { return false }
        for (byte, other) in zip(bytes, wanted) where byte | 0x20 != other | 0x20 { return false }
        return true
    }
}

/// Reads HTTP/1.x requests with http_parser (Node.js's parser for years;
/// Debian's libhttp-parser): pure, no I/O, so it is tested on bytes alone.
/// It stops after each complete request (`http_parser_pause`), so requests
/// that arrive pipelined are answered one after the other, in order.
public final class HTTPRequestParser {
    public struct Limits: Sendable {
        public var headersBytesMax: Int
        public var headersCountMax: Int
        public var bodyBytesMax: Int

        public init(headersBytesMax: Int, headersCountMax: Int = 100, bodyBytesMax: Int) {
            self.headersBytesMax = headersBytesMax
            self.headersCountMax = headersCountMax
            self.bodyBytesMax = bodyBytesMax
        }
    }

    public enum Result: Equatable {
        /// More bytes are needed.
        case incomplete
        /// A whole request; call `resume` before feeding the bytes after it.
        case request
        case failed(HTTPParseFailure)
    }

    private let limits: Limits
    private let parser: UnsafeMutablePointer<http_parser>
    // The message being read.
    private var storage: [UInt8] = []
    private var targetRange = 0..<0
    private var headerRanges: [(name: Range<Int>, value: Range<Int>)] = []
    private var lastWasValue = false
    private var headerBytes = 0
    /// Where the body starts in `storage`, once the headers are complete,
    /// and where it ends once trailers follow it (chunked requests).
    private var bodyStart: Int?
    private var bodyEnd: Int?
    private var failure: HTTPParseFailure?
    /// Whether any byte of the current request has arrived.
    public private(set) var isMidRequest = false
    /// Set once the headers are complete: the client waits for `100
    /// Continue` before it sends the body.
    public private(set) var expectsContinue = false
    /// The request read by the last `feed` that returned `.request`.
    public private(set) var request: HTTPRequest?

    public init(limits: Limits) {
        self.limits = limits
        parser = .allocate(capacity: 1)
        http_parser_init(parser, HTTP_REQUEST)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit { parser.deallocate() }

    /// Reads from `bytes`; returns how many it used and what came of them.
    /// After `.request`, the rest of `bytes` belongs to the next request.
    public func feed(_ bytes: UnsafeRawBufferPointer) -> (consumed: Int, result: Result) {
        if let failure { return (0, .failed(failure)) }
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return (0, .incomplete) }
        let consumed = base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
            http_parser_execute(parser, Self.settings, $0, bytes.count)
        }
        if let failure { return (consumed, .failed(failure)) }
        let errno = http_errno(rawValue: parser.pointee.http_errno)
        if errno == HPE_PAUSED, request != nil { return (consumed, .request) }
        if parser.pointee.upgrade == 1 {
            // CONNECT or Upgrade: the parser stops after the headers.
            finishMessage(upgrade: true)
            return (consumed, .request)
        }
        guard errno == HPE_OK else { return (consumed, .failed(Self.failure(for: errno))) }
        return (consumed, .incomplete)
    }

    /// Ready for the next request, after `.request`.
    public func resume() {
        request = nil
        http_parser_pause(parser, 0)
    }

    /// The target of a request line (`METHOD SP target SP version`), or of
    /// what is left of one after its method's first bytes; nil if it has none.
    public static func targetOfRequestLine(_ line: UnsafeRawBufferPointer) -> String? {
        // The parser may have stopped inside the method or right after it.
        let tokens = line.split(separator: UInt8(ascii: " "), maxSplits: 3, omittingEmptySubsequences: true)
        guard let target = tokens.prefix(2).first(where: { $0.first == UInt8(ascii: "/") }),
              target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return String(decoding: target, as: UTF8.self)
    }

    static func failure(for errno: http_errno) -> HTTPParseFailure {
        if errno == HPE_INVALID_METHOD { return .unknownMethod }
        return .malformed(String(cString: http_errno_description(errno)))
    }

    // MARK: callbacks (http_parser calls these from inside `feed`)

    private func messageBegan() {
        // One connection's buffer serves its requests one after the other;
        // one grown by a large upload is let go.
        if storage.capacity > Self.keptCapacityMax { storage = [] } else { storage.removeAll(keepingCapacity: true) }
        targetRange = 0..<0
        headerRanges.removeAll(keepingCapacity: true)
        lastWasValue = false
        headerBytes = 0
        bodyStart = nil
        bodyEnd = nil
        expectsContinue = false
        isMidRequest = true
    }

    static let keptCapacityMax = 64 * 1_024

    /// Counts request line and header bytes against the limit; false past it.
    private func countHeaderBytes(_ count: Int) -> Bool {
        headerBytes += count
        guard headerBytes <= limits.headersBytesMax else {
            failure = .headersTooLarge
            return false
        }
        return true
    }

    private func appendTarget(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard countHeaderBytes(bytes.count) else { return false }
        let start = storage.count
        storage.append(contentsOf: bytes)
        targetRange = (targetRange.isEmpty ? start : targetRange.lowerBound)..<storage.count
        return true
    }

    private func appendHeader(_ bytes: UnsafeRawBufferPointer, isValue: Bool) -> Bool {
        // After the headers, fields are a chunked body's trailers: stored
        // after the body, which ends where they begin.
        if bodyStart != nil, bodyEnd == nil { bodyEnd = storage.count }
        // Each header line costs its separators too (": " and CRLF).
        let starting = isValue != lastWasValue || headerRanges.isEmpty
        guard countHeaderBytes(bytes.count + (starting ? 2 : 0)) else { return false }
        let start = storage.count
        storage.append(contentsOf: bytes)
        let range = start..<storage.count
        if !isValue && (lastWasValue || headerRanges.isEmpty) {
            guard headerRanges.count < limits.headersCountMax else {
                failure = .headersTooLarge
                return false
            }
            headerRanges.append((range, storage.count..<storage.count))
        } else if let last = headerRanges.indices.last {
            // Parts of one field or value come in order with nothing between.
            if isValue {
                let value = headerRanges[last].value
                headerRanges[last].value = (value.isEmpty ? start : value.lowerBound)..<storage.count
            } else {
                headerRanges[last].name = headerRanges[last].name.lowerBound..<storage.count
            }
        }
        lastWasValue = isValue
        return true
    }

    private func headersCompleted() -> Bool {
        guard parser.pointee.http_major == 1 else {
            failure = .versionNotSupported
            return false
        }
        let flags = parser.pointee.flags
        let contentLength = parser.pointee.content_length
        if flags & UInt32(F_CONTENTLENGTH.rawValue) != 0 {
            guard contentLength <= UInt64(limits.bodyBytesMax) else {
                failure = .bodyTooLarge
                return false
            }
            // What is announced is not yet sent: memory follows the bytes
            // that arrive, past a first 64 KiB.
            storage.reserveCapacity(storage.count + min(Int(contentLength), 64 * 1024))
        }
        bodyStart = storage.count
        let hasBody = flags & UInt32(F_CHUNKED.rawValue) != 0 || (flags & UInt32(F_CONTENTLENGTH.rawValue) != 0 && contentLength > 0)
        // 100 Continue is HTTP/1.1's; an HTTP/1.0 client is never sent it.
        expectsContinue = hasBody && parser.pointee.http_minor >= 1
            && HTTPRequest.header("Expect", in: storage, headerRanges).map { HTTPRequest.equalIgnoringCase($0, "100-continue") } == true
        return true
    }

    private func appendBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let start = bodyStart ?? storage.count
        bodyStart = start
        guard storage.count - start + bytes.count <= limits.bodyBytesMax else {
            failure = .bodyTooLarge
            return false
        }
        storage.append(contentsOf: bytes)
        return true
    }

    private func finishMessage(upgrade: Bool) {
        let code = http_method(rawValue: parser.pointee.method)
        let method = String(cString: http_method_str(code))
        // A tunnel (CONNECT) or protocol switch is never made here: the
        // answer ends the connection.
        let upgrade = upgrade || parser.pointee.upgrade == 1 || code == HTTP_CONNECT
        request = HTTPRequest(
            method: method, storage: storage, targetRange: targetRange, headerRanges: headerRanges,
            bodyRange: (bodyStart ?? storage.count)..<(bodyEnd ?? storage.count),
            keepAlive: !upgrade && http_should_keep_alive(parser) != 0,
            isHTTP10: parser.pointee.http_major == 1 && parser.pointee.http_minor == 0, isUpgrade: upgrade)
        isMidRequest = false
        expectsContinue = false
    }


    // MARK: the C side

    private static func of(_ parser: UnsafeMutablePointer<http_parser>?) -> HTTPRequestParser {
        HTTPParserGlue.owner(of: parser, as: HTTPRequestParser.self)
    }

    /// Shared by every parser; http_parser only reads it.
    nonisolated(unsafe) private static let settings: UnsafeMutablePointer<http_parser_settings> = HTTPParserGlue.settings { settings in
        settings.on_message_begin = { parser in
            of(parser).messageBegan()
            return 0
        }
        settings.on_url = { parser, at, length in
            of(parser).appendTarget(HTTPParserGlue.bytes(at, length)) ? 0 : 1
        }
        settings.on_header_field = { parser, at, length in
            of(parser).appendHeader(HTTPParserGlue.bytes(at, length), isValue: false) ? 0 : 1
        }
        settings.on_header_value = { parser, at, length in
            of(parser).appendHeader(HTTPParserGlue.bytes(at, length), isValue: true) ? 0 : 1
        }
        settings.on_headers_complete = { parser in
            of(parser).headersCompleted() ? 0 : -1
        }
        settings.on_body = { parser, at, length in
            of(parser).appendBody(HTTPParserGlue.bytes(at, length)) ? 0 : 1
        }
        settings.on_message_complete = { parser in
            of(parser).finishMessage(upgrade: false)
            http_parser_pause(parser, 1)
            return 0
        }
    }
}
