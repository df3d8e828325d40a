/// Names of Redis keys. Every key of a campaign carries the hash tag
/// `{c:<cid>}`, so each script touches one Redis Cluster slot.
struct CampaignKeys: Sendable {
    let campaign: String
    let tag: String

    init(_ campaign: String) {
        self.campaign = campaign
        tag = "{c:\(campaign)}"
    }

    var config: String { tag + ":cfg" }
    var remaining: String { tag + ":rem" }
    var capacity: String { tag + ":cap" }
    var holdings: String { tag + ":held" }
    var stats: String { tag + ":stats" }
    var sites: String { tag + ":sites" }
    var slots: String { tag + ":slots" }
    var stream: String { tag + ":ev" }
    var globalBucket: String { tag + ":tb:g" }
    func ipBucket(_ address: String) -> String { tag + ":tb:ip:" + address }
    func citizenBucket(_ citizenKey: String) -> String { tag + ":tb:c:" + citizenKey }
    func record(_ id: String) -> String { tag + ":r:" + id }
    func idempotency(_ keyHash: String) -> String { tag + ":idem:" + keyHash }
}

enum GlobalKeys {
    /// The set of campaign ids (the only key without a campaign tag).
    static let campaigns = "allot:campaigns"
    static let persistGroup = "persist"
}
