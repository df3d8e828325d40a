import Foundation
import Logging
import RedisClient

/// A Redis Cluster of `masters` nodes on loopback, and `replicasPerMaster`
/// replicas of each, made by hand as `redis-cli --cluster create` would:
/// each master a share of the slots, CLUSTER MEET, CLUSTER REPLICATE. For
/// the tests and the load harness (`scripts/cluster.sh` makes a lasting
/// one). Masters are nodes 0..<masters; master m's replicas follow them in
/// order. Each node is supervised (`RedisSupervisor`): a killed one is
/// started again, with its AOF and nodes.conf.
public final class LoopbackRedisCluster {
    public let ports: [Int]
    /// How many of the nodes were made masters (the first ones).
    public let mastersAtStart: Int
    public let directory: String
    private let nodes: [RedisSupervisor]
    public let clients: [RedisSyncClient]

    public init(masters: Int = 3, replicasPerMaster: Int = 0) throws {
        let total = masters * (1 + replicasPerMaster)
        mastersAtStart = masters
        directory = NSTemporaryDirectory() + "test-cluster-" + UUID().uuidString
        var ports: [Int] = []
        while ports.count < total {
            let port = try RedisSupervisor.freeClusterPort()
            if !ports.contains(port) { ports.append(port) }
        }
        self.ports = ports
        let directory = directory
        let nodes = ports.map { port in
            RedisSupervisor(directory: "\(directory)/\(port)", port: port,
                            extraArguments: ["--cluster-enabled", "yes", "--cluster-config-file", "\(directory)/\(port)/nodes.conf",
                                             "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0"],
                            logger: Logger(label: "loopback-cluster"))
        }
        self.nodes = nodes
        let clients = ports.map { RedisSyncClient(host: "127.0.0.1", port: $0) }
        self.clients = clients
        do {
            for node in nodes { try node.start() }
            for (index, client) in clients.prefix(masters).enumerated() {
                let range = Self.slots(ofMaster: index, of: masters)
                try client.checked(["CLUSTER", "ADDSLOTSRANGE", String(range.lowerBound), String(range.upperBound)])
            }
            for client in clients.dropFirst() { try client.checked(["CLUSTER", "MEET", "127.0.0.1", String(ports[0])]) }
            try wait("the cluster to form") {
                try clients.allSatisfy { client in
                    let info = try client.command(["CLUSTER", "INFO"]).text ?? ""
                    return info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:\(total)")
                }
            }
            for replica in masters..<total {
                let master = (replica - masters) / replicasPerMaster
                let masterID = try clients[master].checked(["CLUSTER", "MYID"]).text ?? ""
                try wait("node \(replica) to know its master") {
                    try clients[replica].command(["CLUSTER", "REPLICATE", masterID]).errorMessage == nil
                }
                try wait("node \(replica) to replicate") {
                    (try clients[replica].command(["INFO", "replication"]).text ?? "").contains("master_link_status:up")
                }
            }
        } catch {
            stop()  // no redis-server left running by a cluster that did not form
            throw error
        }
    }

    public static func slots(ofMaster index: Int, of masters: Int) -> ClosedRange<Int> {
        (index * ClusterSlot.count / masters)...((index + 1) * ClusterSlot.count / masters - 1)
    }

    public func address(_ index: Int) -> ClusterNodeAddress { ClusterNodeAddress(host: "127.0.0.1", port: ports[index]) }

    /// The master that owns `slot` as first made.
    public func owner(ofSlot slot: Int) -> Int { (0..<mastersAtStart).first { Self.slots(ofMaster: $0, of: mastersAtStart).contains(slot) }! }

    /// Stops node `index` for good (SIGTERM, no restart): a master gone.
    public func stopNode(_ index: Int) { nodes[index].stop() }

    public func nodeID(_ index: Int) throws -> String { try clients[index].checked(["CLUSTER", "MYID"]).text ?? "" }

    /// Moves `slot`, and its keys, from one master to another, as
    /// `redis-cli --cluster reshard` does.
    public func moveSlot(_ slot: Int, from source: Int, to target: Int, finish: Bool = true) throws {
        let (sourceID, targetID) = (try nodeID(source), try nodeID(target))
        try clients[target].checked(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID])
        try clients[source].checked(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID])
        let keys = try clients[source].checked(["CLUSTER", "GETKEYSINSLOT", String(slot), "1000"]).elements ?? []
        for key in keys.compactMap(\.text) {
            try clients[source].checked(["MIGRATE", "127.0.0.1", String(ports[target]), key, "0", "5000"])
        }
        guard finish else { return }
        for client in clients { try client.checked(["CLUSTER", "SETSLOT", String(slot), "NODE", targetID]) }
    }

    public func stop() {
        for client in clients { client.close() }
        for node in nodes { node.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    public func wait(_ what: String, seconds: Double = 10, _ condition: () throws -> Bool) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if (try? condition()) == true { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw RedisError("timed out waiting for \(what)")
    }
}

