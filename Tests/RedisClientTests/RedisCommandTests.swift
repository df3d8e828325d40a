import CHiredis
import Testing
@testable import RedisClient

/// The hot path's own command formatting, byte for byte against hiredis's
/// `redisFormatCommandArgv` for the same arguments.
@Suite struct RedisCommandTests {
    private func hiredisFormat(_ arguments: [String]) -> [UInt8] {
        var argv = ArgvBuffer()
        var target: UnsafeMutablePointer<CChar>?
        let length = argv.with(arguments) { argc, pointers, lengths in redisFormatCommandArgv(&target, argc, pointers, lengths) }
        defer { redisFreeCommand(target) }
        return target!.withMemoryRebound(to: UInt8.self, capacity: Int(length)) { Array(UnsafeBufferPointer(start: $0, count: Int(length))) }
    }

    @Test func matchesHiredisFormatting() {
        var command = RedisCommand(argumentCount: 9, bytesCapacity: 8)
        command.append("FCALL")
        command.append("allot_reserve_0123")
        command.append(10)
        command.append("{c:x}", ":bucket:ip:", "2001:db8::1")
        command.append("{c:x}", ":rem")
        command.append("")
        command.append("über ☃ \r\n$*")
        command.append(-1_234_567_890_123)
        command.append(Int.min)
        #expect(command.isComplete)
        #expect(command.bytes == hiredisFormat([
            "FCALL", "allot_reserve_0123", "10", "{c:x}:bucket:ip:2001:db8::1", "{c:x}:rem", "", "über ☃ \r\n$*",
            "-1234567890123", String(Int.min),
        ]))
    }

    @Test func countsItsArguments() {
        var command = RedisCommand(argumentCount: 2)
        command.append("GET")
        #expect(!command.isComplete)
        command.append(0)
        #expect(command.isComplete)
        #expect(command.bytes == hiredisFormat(["GET", "0"]))
    }
}
