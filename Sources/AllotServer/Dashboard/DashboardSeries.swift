import AllotDomain
import EventLoops
import Synchronization

/// A campaign's figures at one moment, as the dashboard's sampler read them.
/// Counts are cumulative: rates are differences between samples.
struct DashboardSample: Sendable {
    var atMillis: Int64
    /// Places ever taken (taken now, plus those cancelled since).
    var taken: Int
    /// Refusals so far, per `CampaignStats.rejectionReasons`.
    var rejected: [Int]
    var persistLagMillis: Int64
    /// This node's reservation latencies so far, per `LoopHistogram.boundsMicros`.
    var latencyBuckets: [Int]
}

/// The last minutes of samples of the campaigns operators are watching.
/// The dashboard marks a campaign watched when it is shown; the admin
/// worker samples watched campaigns once a second (DashboardSampler) and
/// forgets one nobody has looked at for `watchMillis`. Bounded: at most
/// `campaignsMax` campaigns, `samplesMax` samples each.
final class DashboardSeries: Sendable {
    static let samplesMax = 300
    static let campaignsMax = 32
    static let watchMillis: Int64 = 10 * 60 * 1000

    private struct Watched {
        var lastViewedMillis: Int64
        var samples: [DashboardSample] = []
    }

    private let campaigns = Mutex<[String: Watched]>([:])

    /// Noted when a dashboard page shows `campaign`; false when too many
    /// are watched already (its page then shows no series).
    @discardableResult
    func watch(_ campaign: String, nowMillis: Int64) -> Bool {
        campaigns.withLock { campaigns in
            if campaigns[campaign] != nil {
                campaigns[campaign]!.lastViewedMillis = nowMillis
                return true
            }
            campaigns = campaigns.filter { nowMillis - $0.value.lastViewedMillis < Self.watchMillis }
            guard campaigns.count < Self.campaignsMax else { return false }
            campaigns[campaign] = Watched(lastViewedMillis: nowMillis)
            return true
        }
    }

    /// Campaigns viewed within `watchMillis`.
    func watched(nowMillis: Int64) -> [String] {
        campaigns.withLock { $0.filter { nowMillis - $0.value.lastViewedMillis < Self.watchMillis }.map(\.key) }
    }

    func record(_ campaign: String, _ sample: DashboardSample) {
        campaigns.withLock { campaigns in
            guard campaigns[campaign] != nil else { return }
            campaigns[campaign]!.samples.append(sample)
            if campaigns[campaign]!.samples.count > Self.samplesMax { campaigns[campaign]!.samples.removeFirst() }
        }
    }

    func samples(_ campaign: String) -> [DashboardSample] {
        campaigns.withLock { $0[campaign]?.samples ?? [] }
    }
}

/// What the dashboard shows from a campaign's samples: rates now and over
/// time, the latency percentile. Pure.
struct DashboardFigures {
    let samples: [DashboardSample]

    /// Per second between each sample and the one before it: places taken,
    /// and refusals per reason.
    var rates: [(atMillis: Int64, taken: Double, rejected: [Double])] {
        zip(samples, samples.dropFirst()).compactMap { before, after in
            let seconds = Double(after.atMillis - before.atMillis) / 1000
            guard seconds > 0 else { return nil }
            return (after.atMillis, Double(max(0, after.taken - before.taken)) / seconds,
                    zip(before.rejected, after.rejected).map { Double(max(0, $1 - $0)) / seconds })
        }
    }

    /// Average rates over the last `windowMillis`: taken, and refusals per reason.
    func recentRates(windowMillis: Int64 = 10_000) -> (taken: Double, rejected: [Double])? {
        guard let last = samples.last, let first = samples.last(where: { last.atMillis - $0.atMillis >= windowMillis }) ?? samples.first,
              last.atMillis > first.atMillis else { return nil }
        let seconds = Double(last.atMillis - first.atMillis) / 1000
        return (Double(max(0, last.taken - first.taken)) / seconds,
                zip(first.rejected, last.rejected).map { Double(max(0, $1 - $0)) / seconds })
    }

    /// The bound (in µs) below which `percentile` of the reservations of the
    /// last `windowMillis` were answered: the upper edge of the histogram
    /// bucket it falls in; nil with none answered.
    func latencyPercentileMicros(_ percentile: Double, windowMillis: Int64 = 60_000) -> Int64? {
        guard let last = samples.last else { return nil }
        let first = samples.first { last.atMillis - $0.atMillis <= windowMillis } ?? last
        let counts = zip(first.latencyBuckets, last.latencyBuckets).map { max(0, $1 - $0) }
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        let needed = Int((Double(total) * percentile).rounded(.up))
        var cumulative = 0
        for (index, count) in counts.enumerated() {
            cumulative += count
            if cumulative >= needed { return LoopHistogram.boundsMicros[index] }
        }
        return LoopHistogram.boundsMicros.last
    }
}

/// Samples the watched campaigns, on the admin worker (which may block on
/// Redis and SQLite), once a second: the lean stats (no scan), within a
/// time budget, so that operators' own requests are not kept waiting.
enum DashboardSampler {
    static let budgetMicros: Int64 = 200_000
    /// The reservations p99 is over: the API's and the pages' bookings.
    static let reservationRoutes = [#"route="reserve""#, #"route="booking_confirm""#]

    static func sample(_ store: AdminStore, series: DashboardSeries, metrics: ServerMetrics) {
        let now = WallClock.nowMillis(), started = monotonicMicros()
        let watched = series.watched(nowMillis: now)
        guard !watched.isEmpty else { return }
        let latency = metrics.requestDurations.bucketCounts(labelsContainingAnyOf: reservationRoutes)
        for campaign in watched {
            // Over budget, or a campaign that cannot be read now: a gap in its series.
            guard monotonicMicros() - started < budgetMicros else { return }
            guard let stats = try? store.sampleStats(campaign) else { continue }
            series.record(campaign, DashboardSample(atMillis: now, taken: stats.takenEver, rejected: stats.rejections,
                                                    persistLagMillis: stats.persistLagMillis, latencyBuckets: latency))
        }
    }
}
