import CHiredis
@testable import RedisClient
import Testing

/// Replies as hiredis's own reader makes them from RESP bytes, copied into
/// Swift values: what every callback does with a live reply.
@Suite struct RedisReplyTests {
    func reply(_ resp: String) throws -> RedisReply {
        let reader = try #require(redisReaderCreate())
        defer { redisReaderFree(reader) }
        let bytes = Array(resp.utf8)
        #expect(bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        } == REDIS_OK)
        var raw: UnsafeMutableRawPointer?
        #expect(redisReaderGetReply(reader, &raw) == REDIS_OK)
        let parsed = try #require(raw)
        defer { freeReplyObject(parsed) }
        return RedisReply(copying: parsed.assumingMemoryBound(to: redisReply.self))
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

    @Test func nestingPastTheLimitIsAnErrorValueNotARecursionWithoutEnd() throws {
        let depth = RedisReply.depthMax + 2
        let nested = try reply(String(repeating: "*1\r\n", count: depth) + ":1\r\n")
        var current = nested, levels = 0
        while case .array(let elements) = current, let first = elements.first {
            current = first
            levels += 1
        }
        #expect(levels == RedisReply.depthMax)
        #expect(current.errorMessage?.contains("nested deeper") == true)
    }

    @Test func readingHelpersAreTotal() throws {
        #expect(try reply("$2\r\n12\r\n").integer == 12)
        #expect(try reply("$3\r\nabc\r\n").integer == nil)
        #expect(try reply("*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n").pairs == ["a": "1", "b": "2"])
        #expect(try reply("*1\r\n$1\r\na\r\n").pairs == nil)
        #expect(try reply(":5\r\n").elements == nil)
    }
}
