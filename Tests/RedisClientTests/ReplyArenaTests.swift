import CHiredis
@testable import RedisClient
import Testing

/// hiredis's reader building replies in a ReplyArena: the same replies as
/// its own functions make, held as long as they are not freed, and the
/// arena's memory bounded by what is held.
@Suite struct ReplyArenaTests {
    /// A reader whose replies go to `arena`.
    final class ArenaReader {
        let reader = redisReaderCreate()!
        let arena = ReplyArena()
        private var isFreed = false
        init() { arena.adopt(reader) }
        deinit { free() }

        func free() {
            if !isFreed { redisReaderFree(reader) }
            isFreed = true
        }

        func feed(_ resp: [UInt8]) {
            _ = resp.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
            }
        }

        /// The next whole reply (the caller frees it), nil if none yet.
        func next() -> UnsafeMutableRawPointer? {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else { return nil }
            return raw
        }
    }

    static func copy(_ raw: UnsafeMutableRawPointer) -> RedisReply {
        RedisReply(copying: raw.assumingMemoryBound(to: redisReply.self))
    }

    static let shapes: [String] = [
        ":42\r\n", ":-7\r\n", "+OK\r\n", "-ERR boom\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n", "$0\r\n\r\n",
        "$5\r\na\u{0}b\r\n\r\n", "*2\r\n$2\r\nok\r\n:1772323201234\r\n",
        "*3\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\ne\r\n$5\r\nhello\r\n*0\r\n$-1\r\n",
        "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        "$70000\r\n" + String(repeating: "x", count: 70_000) + "\r\n",
        "*300\r\n" + String(repeating: "*2\r\n$15\r\n1700000000000-0\r\n*2\r\n$1\r\ne\r\n$40\r\n" + String(repeating: "r", count: 40) + "\r\n", count: 300),
    ]

    @Test func everyShapeIsTheReplyHiredisItselfMakes() throws {
        let arenaReader = ArenaReader()
        for shape in Self.shapes {
            let resp = Array(shape.utf8)
            let expected = try #require(RedisReplyView.parsing(resp) { $0.copy }, "\(shape.prefix(40))")
            arenaReader.feed(resp)
            let raw = try #require(arenaReader.next(), "\(shape.prefix(40))")
            let same = Self.copy(raw) == expected  // (a Bool: the replies are too long to print)
            #expect(same, "\(shape.prefix(40))")
            freeArenaReply(raw)
            #expect(arenaReader.arena.isEmpty)
        }
    }

    /// A pipeline's replies are all held at once: freeing one leaves the
    /// others whole, and the arena is empty only when all are freed.
    @Test func repliesHeldTogetherStayWholeUntilEachIsFreed() throws {
        let arenaReader = ArenaReader()
        arenaReader.feed(Array(Self.shapes.joined().utf8))
        var held: [(UnsafeMutableRawPointer, RedisReply)] = []
        for shape in Self.shapes {
            let raw = try #require(arenaReader.next())
            held.append((raw, try #require(RedisReplyView.parsing(Array(shape.utf8)) { $0.copy })))
        }
        var fillers: [UnsafeMutableRawPointer] = []
        for index in held.indices {
            // Every reply not freed yet is still what it was, though newer
            // replies were read since the last free.
            for (offset, (other, otherExpected)) in held[index...].enumerated() {
                let same = Self.copy(other) == otherExpected
                #expect(same, "reply \(index + offset) after \(index) freed")
            }
            #expect(!arenaReader.arena.isEmpty)
            freeArenaReply(held[index].0)
            arenaReader.feed(Array(("*2\r\n$30\r\n" + String(repeating: "f", count: 30) + "\r\n:\(index)\r\n").utf8))
            fillers.append(try #require(arenaReader.next()))
        }
        for filler in fillers { freeArenaReply(filler) }
        #expect(arenaReader.arena.isEmpty)
    }

    /// Once empty, the arena keeps one chunk, and none past its size bound.
    @Test func anEmptyArenaKeepsOneChunkAtMost() throws {
        let arenaReader = ArenaReader()
        let medium = "*2000\r\n" + String(repeating: "$10\r\n0123456789\r\n", count: 2_000)
        for _ in 0..<3 {
            arenaReader.feed(Array(medium.utf8))
            freeArenaReply(try #require(arenaReader.next()))
        }
        let kept = arenaReader.arena.bytesHeld
        #expect(kept > 0 && kept <= ReplyArena.keptChunkBytesMax)
        // Reading the same again needs no more memory.
        arenaReader.feed(Array(medium.utf8))
        freeArenaReply(try #require(arenaReader.next()))
        #expect(arenaReader.arena.bytesHeld == kept)
        // A reply over the bound: its chunks are let go once it is freed.
        let huge = "$2000000\r\n" + String(repeating: "h", count: 2_000_000) + "\r\n"
        arenaReader.feed(Array(huge.utf8))
        let raw = try #require(arenaReader.next())
        #expect(arenaReader.arena.bytesHeld > 2_000_000)
        freeArenaReply(raw)
        #expect(arenaReader.arena.bytesHeld <= ReplyArena.keptChunkBytesMax)
    }

    /// A reply cut off by a protocol error is freed by hiredis itself
    /// (through the arena): nothing stays held.
    @Test func aReplyCutOffByAProtocolErrorLeavesNothingHeld() {
        let arenaReader = ArenaReader()
        arenaReader.feed(Array("*3\r\n:1\r\n$2\r\nok\r\n?garbage\r\n".utf8))
        #expect(arenaReader.next() == nil)
        #expect(arenaReader.arena.isEmpty)
        // And a half-read reply when the reader is freed.
        let other = ArenaReader()
        other.feed(Array("*3\r\n:1\r\n".utf8))
        #expect(other.next() == nil)
        #expect(!other.arena.isEmpty)
        other.free()
        #expect(other.arena.isEmpty)
    }
}
