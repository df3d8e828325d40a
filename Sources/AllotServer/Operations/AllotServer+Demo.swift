import AllotDomain
import Dispatch

extension AllotServer {
    public static let demoCampaignID = "demo"
    /// A valid `cn-resident` number for the demo's curl lines.
    public static let demoCitizenID = "11010519491231002X"

    /// Seeds (or keeps, on a restart) the demo campaign: open now for a week,
    /// three pharmacies, ten slots of 100 places each, through the same path
    /// an operator's requests take.
    public func seedDemoCampaign() throws {
        let now = WallClock.nowMillis()
        let day: Int64 = 86_400_000
        let campaign = Campaign(id: Self.demoCampaignID, name: "Masks, demo week", status: .open, idScheme: .cnResident,
                                perCitizenLimit: 1, opensAtMillis: now - 60_000, closesAtMillis: now + 7 * day)
        let sites = (1...3).map { Site(id: "pharmacy-\($0)", name: "Pharmacy \($0)", address: "\($0) Main Street") }
        let dayStart = now - now % day + day
        var slots: [Slot] = []
        for site in sites {
            for hour in 0..<10 {
                let starts = dayStart + Int64(8 + hour) * 3_600_000
                slots.append(Slot(id: "\(site.id)-h\(8 + hour)", siteID: site.id, startsAtMillis: starts,
                                  endsAtMillis: starts + 3_600_000, capacity: 100))
            }
        }
        let slotList = slots
        // One job: the campaign is kept as it is when it already exists.
        let answer = try runAdmin { store in
            guard try store.loadCampaign(campaign.id) == nil else { return .json(200, []) }
            do {
                _ = try store.createCampaign(campaign, by: "system")
                _ = try store.putSites(campaign.id, sites, by: "system")
                _ = try store.putSlots(campaign.id, slotList, by: "system")
            } catch let problem as Problem {
                return .problem(problem)
            }
            return .json(201, [])
        }
        guard answer.status < 300 else {
            throw ServerStartError("demo seeding failed: \(String(decoding: answer.body, as: UTF8.self))")
        }
    }

    /// Runs one job on the admin worker and waits for its answer.
    func runAdmin(_ job: @escaping AdminWorker.ThrowingJob) throws -> Answer {
        let box = AnswerBox()
        let done = DispatchSemaphore(value: 0)
        let accepted = adminWorker.submit({ store in
            do { return try job(store) } catch { return .problem(.unavailable("\(error)")) }
        }, reply: { answer in
            box.set(answer)
            done.signal()
        })
        guard accepted else { throw ServerStartError("admin queue full") }
        done.wait()
        return box.get()
    }
}

private final class AnswerBox: @unchecked Sendable {
    private var answer: Answer?
    func set(_ value: Answer) { answer = value }
    func get() -> Answer { answer ?? .problem(.busy) }
}
