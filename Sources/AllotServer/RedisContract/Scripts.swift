import Crypto
import Foundation

/// The Lua scripts, loaded from the bundle's `.lua` resources. Their SHA1 is
/// computed here, so EVALSHA works before SCRIPT LOAD has answered.
struct LuaScript: Sendable {
    let name: String
    let source: String
    let sha: String

    /// `prelude`: resource files put in front of the script (Lua has no
    /// include in Redis), such as the token bucket maths.
    init(name: String, prelude: [String] = []) {
        self.name = name
        source = (prelude + [name]).map(Self.resource).joined(separator: "\n")
        sha = Insecure.SHA1.hash(data: Array(source.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A `.lua` resource's text. A missing one is a broken build, found by
    /// the first test that runs any script.
    static func resource(_ name: String) -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: "lua", subdirectory: "Scripts"),
              let source = try? String(contentsOf: url, encoding: .utf8) else {
            fatalError("missing script resource \(name).lua")
        }
        return source
    }

    /// `EVALSHA sha numkeys keys… arguments…`, built in one allocation.
    func command(keys: [String], arguments: [String]) -> [String] {
        var command: [String] = []
        command.reserveCapacity(3 + keys.count + arguments.count)
        command.append("EVALSHA")
        command.append(sha)
        command.append(String(keys.count))
        command.append(contentsOf: keys)
        command.append(contentsOf: arguments)
        return command
    }
}

enum Scripts {
    static let reserve = LuaScript(name: "reserve", prelude: ["token_bucket"])
    static let transition = LuaScript(name: "transition")
    static let putSlots = LuaScript(name: "put_slots")
    static let snapshot = LuaScript(name: "snapshot")
    static let stats = LuaScript(name: "stats")
    static let retire = LuaScript(name: "retire")
    static let all = [reserve, transition, putSlots, snapshot, stats, retire]
}
