import CHiredis
@testable import RedisClient
import Testing

/// Replies as hiredis's own reader makes them from RESP bytes, copied into
/// Swift values: what every callback does with a live reply.
@Suite struct RedisReplyTests {
    func reply(_ resp: String) throws -> RedisReply {
        try #require(try copiedReply(resp), "hiredis refused \(resp)")
    }

    @Test func eachKindOfReply() throws {
        #expect(try reply("+OK\r\n") == .status("OK"))
        #expect(try reply("-ERR boom\r\n") == .error("ERR boom"))
        #expect(try reply(":-42\r\n") == .integer(-42))
        #expect(try reply("$-1\r\n") == .null)
        #expect(try reply("$3\r\na\u{0}b\r\n") == .string([97, 0, 98]))
        #expect(try reply("*2\r\n$2\r\nok\r\n:7\r\n") == .array([.string(Array("ok".utf8)), .integer(7)]))
        #expect(try reply("*3\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n").pairs == nil)
    }

    /// hiredis 0.14's reader refuses replies nested deeper than it can
    /// track; below that, the copy keeps at most `depthMax` levels and
    /// stands an error value in for the rest, so no reply recurses without end.
    @Test func nestingIsBoundedBothByTheReaderAndByTheCopy() throws {
        var accepted = 0
        for depth in 1...12 {
            guard let nested = try copiedReply(String(repeating: "*1\r\n", count: depth) + ":1\r\n") else { continue }
            accepted += 1
            var current = nested, levels = 0
            while case .array(let elements) = current, let first = elements.first {
                current = first
                levels += 1
            }
            #expect(levels == min(depth, RedisReply.depthMax), "depth \(depth)")
            #expect(depth <= RedisReply.depthMax ? current == .integer(1) : current.errorMessage != nil, "depth \(depth)")
        }
        #expect(accepted >= 6)
    }

    /// Nil when hiredis's reader refuses the bytes.
    func copiedReply(_ resp: String) throws -> RedisReply? {
        RedisReplyView.parsing(Array(resp.utf8)) { $0.copy }
    }

    @Test func readingHelpersAreTotal() throws {
        #expect(try reply("$2\r\n12\r\n").integer == 12)
        #expect(try reply("$3\r\nabc\r\n").integer == nil)
        #expect(try reply("*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n").pairs == ["a": "1", "b": "2"])
        #expect(try reply("*1\r\n$1\r\na\r\n").pairs == nil)
        #expect(try reply(":5\r\n").elements == nil)
    }
}
