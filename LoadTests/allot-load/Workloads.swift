import EventHTTP
import EventLoops
import Foundation

/// The campaign a run books into.
struct CampaignPlan: Sendable {
    let id: String
    let slots: [String]
    let capacityPerSlot: Int
    let perCitizenLimit: Int
    var places: Int { slots.count * capacityPerSlot }
    /// Made once: every reservation is sent to it.
    let reservePath: String

    init(id: String, slots: [String], capacityPerSlot: Int, perCitizenLimit: Int) {
        self.id = id
        self.slots = slots
        self.capacityPerSlot = capacityPerSlot
        self.perCitizenLimit = perCitizenLimit
        reservePath = "/v1/campaigns/\(id)/reservations"
    }

    /// `{"citizen_id":"…","slot_id":"…"}`, written into one array (the
    /// harness makes one per request).
    func body(citizen: Int, slot: Int) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(48 + slots[slot].utf8.count)
        body.append(contentsOf: #"{"citizen_id":""#.utf8)
        CitizenIDs.append(citizen, to: &body)
        body.append(contentsOf: #"","slot_id":""#.utf8)
        body.append(contentsOf: slots[slot].utf8)
        body.append(contentsOf: #""}"#.utf8)
        return body
    }
}

/// What the run saw, for verification: who booked what, and every
/// contradiction of the contract noticed on the way.
final class Ledger: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var reservationOf: [Int: String] = [:]
    private(set) var violations: [String] = []
    private(set) var counters: [String: Int] = [:]
    /// Each reservation id with when its first 201 came (monotonic µs).
    private var ackedAt: [(micros: Int64, id: String)] = []

    func booked(citizen: Int, id: String) {
        lock.lock()
        defer { lock.unlock() }
        if let earlier = reservationOf[citizen], earlier != id {
            violations.append("no double share: citizen \(citizen) got two reservations (\(earlier), \(id))")
        } else {
            if reservationOf[citizen] == nil { ackedAt.append((monotonicMicros(), id)) }
            reservationOf[citizen] = id
        }
    }

    /// Reservations answered 201 before `micros`.
    func ids(ackedBefore micros: Int64) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return ackedAt.prefix { $0.micros < micros }.map(\.id)
    }

    func count(_ name: String) {
        lock.lock()
        counters[name, default: 0] += 1
        lock.unlock()
    }

    func violation(_ text: String) {
        lock.lock()
        violations.append(text)
        lock.unlock()
    }

    var bookedIDs: Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return Set(reservationOf.values)
    }
}

/// xorshift64*: fast, seeded, replayable.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// `surge`: citizens arrive on a profile, pick slots by popularity, obey
/// 429 Retry-After, move on from full slots, stop once booked or when every
/// slot is full. Some replay their request with the same Idempotency-Key
/// (must get the same reservation) or try again once booked (must be refused).
final class SurgeWorkload: Workload {
    struct Settings {
        let plan: CampaignPlan
        let citizens: Int
        let arrivalSeconds: Double
        let frontLoaded: Bool
        let zipfExponent: Double
        let replayFraction: Double
        let duplicateFraction: Double
        let seed: UInt64
    }

    private enum Phase { case booking, replay(expected: String), duplicate(triesLeft: Int) }
    private struct Journey {
        var slot: Int
        var phase: Phase
    }

    private let settings: Settings
    private let ledger: Ledger
    private let thread: Int, threads: Int
    private let startMicros: Int64
    private let zipf: Zipf
    private var random: SeededRandom
    private var nextCitizen: Int
    private var journeys: [Int: Journey] = [:]
    private var due = MinHeap()
    private var fullSlots = Set<Int>()

    init(settings: Settings, ledger: Ledger, thread: Int, threads: Int, startMicros: Int64) {
        self.settings = settings
        self.ledger = ledger
        self.thread = thread
        self.threads = threads
        self.startMicros = startMicros
        zipf = Zipf(count: settings.plan.slots.count, exponent: settings.zipfExponent)
        random = SeededRandom(seed: settings.seed &+ UInt64(thread) &* 0x1000_0000_01B3)
        nextCitizen = thread
    }

    var isFinished: Bool { nextCitizen >= settings.citizens && journeys.isEmpty }

    /// When citizen `index` arrives: front-loaded (a truncated exponential
    /// with most arrivals in the first quarter of the window) or uniform.
    private func arrivalMicros(_ index: Int) -> Int64 {
        let u = (Double(index) + 0.5) / Double(settings.citizens)
        let window = settings.arrivalSeconds
        let seconds: Double
        if settings.frontLoaded {
            let tau = window / 4
            seconds = -tau * log(1 - u * (1 - exp(-window / tau)))
        } else {
            seconds = u * window
        }
        return startMicros + Int64(seconds * 1_000_000)
    }

    func next(nowMicros: Int64) -> PlannedRequest? {
        // Latency counts from when the citizen arrived (or was due to try
        // again), so waiting for a free connection is part of it.
        if let top = due.peek, top.at <= nowMicros {
            _ = due.pop()
            return request(for: top.citizen, intended: top.at)
        }
        guard nextCitizen < settings.citizens else { return nil }
        let arrival = arrivalMicros(nextCitizen)
        guard arrival <= nowMicros else { return nil }
        let citizen = nextCitizen
        nextCitizen += threads
        // A newcomer tries once whatever this thread has learnt: it has not
        // seen the other citizens' answers.
        let slot = pickSlot() ?? zipf.sample(random.unit())
        journeys[citizen] = Journey(slot: slot, phase: .booking)
        return request(for: citizen, intended: arrival)
    }

    private func request(for citizen: Int, intended: Int64) -> PlannedRequest {
        let journey = journeys[citizen]!
        var headers: [(String, String)] = []
        if case .duplicate = journey.phase {} else {
            // What a careful client does: a retry after a 503 or a lost
            // answer cannot book twice.
            headers.append(("Idempotency-Key", "c\(citizen)-s\(journey.slot)"))
        }
        return PlannedRequest(path: settings.plan.reservePath, headers: headers,
                              body: settings.plan.body(citizen: citizen, slot: journey.slot), intendedMicros: intended, tag: citizen)
    }

    private func pickSlot(excluding current: Int? = nil) -> Int? {
        let count = settings.plan.slots.count
        guard fullSlots.count < count else { return nil }
        for _ in 0..<8 {
            let slot = zipf.sample(random.unit())
            if !fullSlots.contains(slot), slot != current { return slot }
        }
        let open = (0..<count).filter { !fullSlots.contains($0) && $0 != current }
        return open.isEmpty ? nil : open[Int(random.next() % UInt64(open.count))]
    }

    private func flagged(_ citizen: Int, _ fraction: Double, salt: UInt64) -> Bool {
        var mixer = SeededRandom(seed: UInt64(citizen) &* 0x9E37_79B9_7F4A_7C15 &+ salt &+ settings.seed)
        return mixer.unit() < fraction
    }

    private func retry(_ citizen: Int, now: Int64, afterSeconds: Int) {
        let jitter = Int64(random.next() % 1_000_000)
        due.push(at: now + Int64(afterSeconds) * 1_000_000 + jitter, citizen: citizen)
    }

    private func finish(_ citizen: Int) { journeys[citizen] = nil }

    func completed(_ request: PlannedRequest, _ answer: Answer, nowMicros: Int64) {
        let citizen = request.tag
        guard var journey = journeys[citizen] else { return }
        switch (answer.status, answer.code) {
        case (201, _):
            let id = answer.id ?? "?"
            switch journey.phase {
            case .booking:
                ledger.booked(citizen: citizen, id: id)
                if flagged(citizen, settings.replayFraction, salt: 1) {
                    journey.phase = .replay(expected: id)
                } else if flagged(citizen, settings.duplicateFraction, salt: 2) {
                    journey.phase = .duplicate(triesLeft: 3)
                    journey.slot = pickSlot(excluding: journey.slot) ?? journey.slot
                } else {
                    return finish(citizen)
                }
            case .replay(let expected):
                if id == expected { ledger.count("idempotent replays answered alike") }
                else { ledger.violation("idempotency: citizen \(citizen)'s replay got \(id), first answer was \(expected)") }
                guard flagged(citizen, settings.duplicateFraction, salt: 2) else { return finish(citizen) }
                journey.phase = .duplicate(triesLeft: 3)
                journey.slot = pickSlot(excluding: journey.slot) ?? journey.slot
            case .duplicate:
                ledger.violation("no double share: citizen \(citizen) booked again (\(id)) while holding a reservation")
                return finish(citizen)
            }
            journeys[citizen] = journey
            due.push(at: nowMicros, citizen: citizen)
        case (409, "slot_full"):
            fullSlots.insert(journey.slot)
            if case .duplicate(let triesLeft) = journey.phase, triesLeft <= 1 { return finish(citizen) }
            guard let slot = pickSlot() else {
                ledger.count("gave up: every slot full")
                return finish(citizen)
            }
            if case .duplicate(let triesLeft) = journey.phase { journey.phase = .duplicate(triesLeft: triesLeft - 1) }
            journey.slot = slot
            journeys[citizen] = journey
            due.push(at: nowMicros, citizen: citizen)
        case (409, "citizen_limit_reached"):
            if case .duplicate = journey.phase { ledger.count("duplicates refused") }
            else { ledger.count("limit reached before any 201 seen") }
            finish(citizen)
        case (429, _):
            retry(citizen, now: nowMicros, afterSeconds: max(1, answer.retryAfterSeconds ?? 1))
        case (503, _), (0, _):
            retry(citizen, now: nowMicros, afterSeconds: max(1, answer.retryAfterSeconds ?? 1))
        case (403, "campaign_not_open"):
            ledger.count("campaign not open")
            finish(citizen)
        default:
            ledger.count("unexpected \(answer.label)")
            finish(citizen)
        }
    }
}

/// `steady` and `read-storm`: open loop at a fixed rate. Each request has
/// an intended send time on a fixed schedule, and its latency counts from
/// then, whether or not a connection was free (no coordinated omission).
/// A `readFraction` of the requests poll availability instead of booking.
final class OpenLoopWorkload: Workload {
    private let plan: CampaignPlan
    private let ledger: Ledger
    private let intervalMicros: Double
    private let endMicros: Int64
    private let readFraction: Double
    private let zipf: Zipf
    private var random: SeededRandom
    private var nextIntended: Double
    private var nextCitizen: Int
    private let threads: Int
    /// Intended send times due but not yet sent: a request is built only
    /// when a connection takes it, so a run that falls behind costs the
    /// harness no more than one that keeps up.
    private var queue: [Int64] = []
    private var queueHead = 0

    init(plan: CampaignPlan, ledger: Ledger, ratePerSecond: Double, thread: Int, threads: Int, startMicros: Int64,
         durationSeconds: Double, readFraction: Double, citizenOffset: Int, seed: UInt64) {
        self.plan = plan
        self.ledger = ledger
        intervalMicros = 1_000_000 / (ratePerSecond / Double(threads))
        // Threads start staggered within one interval.
        nextIntended = Double(startMicros) + intervalMicros * Double(thread) / Double(threads)
        endMicros = startMicros + Int64(durationSeconds * 1_000_000)
        self.readFraction = readFraction
        zipf = Zipf(count: plan.slots.count, exponent: 1.0)
        random = SeededRandom(seed: seed &+ UInt64(thread) &* 7919)
        nextCitizen = citizenOffset + thread
        self.threads = threads
    }

    var isFinished: Bool { Int64(nextIntended) >= endMicros && queueHead == queue.count }

    func next(nowMicros: Int64) -> PlannedRequest? {
        // Everything due by now joins the queue with its intended time.
        while Int64(nextIntended) <= nowMicros && Int64(nextIntended) < endMicros {
            queue.append(Int64(nextIntended))
            nextIntended += intervalMicros
        }
        guard queueHead < queue.count else { return nil }
        let intended = queue[queueHead]
        queueHead += 1
        if queueHead > 4096 { queue.removeFirst(queueHead); queueHead = 0 }
        return make(intended: intended)
    }

    private func make(intended: Int64) -> PlannedRequest {
        if readFraction > 0, random.unit() < readFraction {
            let path = "/v1/campaigns/\(plan.id)/slots"
            return PlannedRequest(method: "GET", path: path, intendedMicros: intended, tag: -1)
        }
        let citizen = nextCitizen
        nextCitizen += threads
        return PlannedRequest(path: plan.reservePath, body: plan.body(citizen: citizen, slot: zipf.sample(random.unit())),
                              intendedMicros: intended, tag: citizen)
    }

    func completed(_ request: PlannedRequest, _ answer: Answer, nowMicros: Int64) {
        guard request.tag >= 0 else { return }
        if answer.status == 201, let id = answer.id { ledger.booked(citizen: request.tag, id: id) }
    }
}

/// A binary min-heap of (time, citizen): retries waiting for their time.
struct MinHeap {
    private var items: [(at: Int64, citizen: Int)] = []
    var peek: (at: Int64, citizen: Int)? { items.first }

    mutating func push(at: Int64, citizen: Int) {
        items.append((at, citizen))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].at < items[parent].at else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (at: Int64, citizen: Int)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count, items[left].at < items[smallest].at { smallest = left }
            if right < items.count, items[right].at < items[smallest].at { smallest = right }
            guard smallest != parent else { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
