import Crypto
import Foundation
import RedisClient

/// One of Allot's Redis Functions: a `.lua` resource whose body runs with
/// `KEYS` and `ARGV` as its parameters, so each file reads like a script.
struct StoredFunction: Sendable {
    /// The resource's name (`reserve`, `snapshot`…).
    let name: String
    /// Read-only (`no-writes`): may run on a replica.
    let readOnly: Bool
    /// The name it is called by, `allot_<name>_<library version>`.
    let functionName: String

    /// `FCALL name numkeys`, in the wire format, followed by room for
    /// `keys` keys and `arguments` arguments the caller appends.
    func command(keys: Int, arguments: Int) -> RedisCommand {
        // Room for the reservation's 24 keys and arguments with long
        // campaign and slot ids: the buffer never grows.
        var command = RedisCommand(argumentCount: 3 + keys + arguments, bytesCapacity: 1_536)
        command.append("FCALL")
        command.append(functionName)
        command.append(keys)
        return command
    }

    /// `FCALL name numkeys keys… arguments…`, built in one allocation.
    func command(keys: [String], arguments: [String]) -> [String] {
        var command: [String] = []
        command.reserveCapacity(3 + keys.count + arguments.count)
        command.append("FCALL")
        command.append(functionName)
        command.append(String(keys.count))
        command.append(contentsOf: keys)
        command.append(contentsOf: arguments)
        return command
    }
}

/// Allot's Redis Functions library (FUNCTION LOAD): unlike EVALSHA
/// scripts, a library is kept in the RDB and AOF, survives a restart and
/// reaches replicas. Its name and its functions' names carry a version, a
/// hash of its source, so servers of two versions (a rolling upgrade) can
/// share one Redis, each calling its own functions.
enum Scripts {
    /// Shared by the functions: the token bucket maths (token_bucket.lua),
    /// places on their way (places.lua), waitlists' offers (waitlist.lua),
    /// records and holds (holds.lua, which offers through waitlist.lua).
    static let preludes = ["token_bucket", "places", "waitlist", "holds"]
    static let functionNames = ["reserve", "transition", "put_slots", "snapshot", "stats", "retire", "debit", "credit", "settle", "lease", "bucket_places", "register", "award", "expire", "waitlist_join", "waitlist_leave", "waitlist_view", "lottery_line"]
    static let reserve = make("reserve")
    static let transition = make("transition")
    static let putSlots = make("put_slots")
    static let snapshot = make("snapshot", readOnly: true)
    static let stats = make("stats", readOnly: true)
    static let retire = make("retire")
    static let debit = make("debit")
    static let credit = make("credit")
    static let settle = make("settle")
    static let lease = make("lease")
    static let bucketPlaces = make("bucket_places", readOnly: true)
    static let register = make("register")
    static let award = make("award")
    static let expire = make("expire")
    static let waitlistJoin = make("waitlist_join")
    static let waitlistLeave = make("waitlist_leave")
    static let waitlistView = make("waitlist_view", readOnly: true)
    static let lotteryLine = make("lottery_line")
    static let all = [reserve, transition, putSlots, snapshot, stats, retire, debit, credit, settle, lease, bucketPlaces, register,
                      award, expire, waitlistJoin, waitlistLeave, waitlistView, lotteryLine]

    /// A hash of every resource the library is made of.
    static let version: String = {
        let text = (preludes + functionNames).map { $0 + "\n" + resource($0) }.joined(separator: "\n")
        return Insecure.SHA1.hash(data: Array(text.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
    }()

    static let libraryName = "allot_" + version

    /// The library's source, as `FUNCTION LOAD` takes it.
    static let library: String = {
        var source = "#!lua name=\(libraryName)\n"
        for prelude in preludes { source += resource(prelude) + "\n" }
        for function in all {
            source += "local function \(function.name)_body(KEYS, ARGV)\n\(resource(function.name))\nend\n"
            let flags = function.readOnly ? "{'no-writes'}" : "{}"
            source += "redis.register_function{function_name='\(function.functionName)', callback=\(function.name)_body, flags=\(flags)}\n"
        }
        return source
    }()

    /// Without REPLACE: a library of this name is this very source (its
    /// name is its hash), so one already there is kept, and no reconnect
    /// writes the library to the AOF and the replicas again.
    static let loadCommand = ["FUNCTION", "LOAD", library]

    /// Whether a reply to `loadCommand` means the library is there.
    static func isLoaded(_ reply: RedisReply) -> Bool {
        guard let message = reply.errorMessage else { return true }
        return message.contains("already exists")
    }

    /// Whether an error reply says the function is not there (Redis
    /// restarted without its data, or FUNCTION FLUSH): load and call again.
    static func isMissingFunction(_ message: String) -> Bool {
        message.hasPrefix("ERR Function not found") || message.hasPrefix("ERR function not found")
    }

    private static func make(_ name: String, readOnly: Bool = false) -> StoredFunction {
        StoredFunction(name: name, readOnly: readOnly, functionName: "allot_\(name)_\(version)")
    }

    /// A `.lua` resource's text. A missing one is a broken build, found by
    /// the first test that calls any function.
    static func resource(_ name: String) -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: "lua", subdirectory: "Scripts"),
              let source = try? String(contentsOf: url, encoding: .utf8) else {
            fatalError("missing script resource \(name).lua")
        }
        return source
    }
}
