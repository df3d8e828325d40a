import AllotDomain
import AllotServer
import Benchmark
import Foundation
import RedisClient
import SQLiteStore

/// Micro-benchmarks of the pure work on the reservation path and of the
/// persister's SQLite write. Allocation counts are exact, so their
/// thresholds are strict; times get a relative tolerance (shared, noisy
/// machines). `scripts/microbench.sh` fails on a regression against
/// `Benchmarks/Thresholds/` (BENCHMARKS.md). Names avoid spaces: the
/// threshold files are found by name.
let benchmarks: @Sendable () -> Void = {
    let timing = BenchmarkThresholds(relative: [.p50: 30.0, .p75: 30.0, .p90: 30.0], absolute: [:])
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        maxDuration: .seconds(2),
        thresholds: [.wallClock: timing, .mallocCountTotal: .strict])

    let cnResident = "11010519491231002X"
    Benchmark("IDValidation.cnResident", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(IDScheme.cnResident.normalize(cnResident)) }
    }

    let keyer = CitizenKeyer(secret: Array("benchmark-citizen-secret-0123456789abcdef".utf8))
    Benchmark("CitizenKey.hmacSHA256", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(keyer.citizenKey(normalizedID: cnResident)) }
    }

    let body = Array(#"{"citizen_id": "11010519491231002X", "slot_id": "pharmacy-17-h09"}"#.utf8)
    Benchmark("RequestDecode.reservationBody", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? ReserveRequest.decode(body)) }
    }

    var random = SystemRandomNumberGenerator()
    let routes = RouteCipher(secret: Array("benchmark-citizen-key-0123456789-abcdef".utf8))
    let reservation = Reservation(id: ReservationID.make(millis: 1_767_225_600_000, route: 1, cipher: routes, using: &random), campaignID: "masks-w12",
                                  slotID: "pharmacy-17-h09", siteID: "pharmacy-17", status: .confirmed,
                                  code: "K7Q2-9XMD", createdAtMillis: 1_767_225_600_123)
    Benchmark("ResponseEncode.reservation", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(reservation.json) }
    }

    let path: Substring = "/v1/campaigns/masks-w12/reservations"
    Benchmark("Routing.postReservations", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(Router.route(method: .post, path: path)) }
    }

    Benchmark("ReservationID.make", configuration: .init(scalingFactor: .kilo)) { benchmark in
        var next: UInt64 = 1_767_225_600_000
        for _ in benchmark.scaledIterations {
            next += 1
            blackHole(ReservationID.make(millis: next, route: 1, cipher: routes, using: &random).text)
        }
    }

    // The reservation path's FCALL in the wire format: 10 keys (three of
    // them appended in pieces) and 8 arguments, as ReservationDesk writes it.
    Benchmark("RedisCommand.reserve", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let tag = "{c:masks-w12}", citizenKey = "0123456789abcdef0123456789abcdef"
        let suffixes = [":cfg", ":rem", ":held", ":stats", ":recs", ":ev", ":bucket:g"]
        let arguments = ["pharmacy-17-h09", "pharmacy-17", "01KC7Q2M9XMDA1B2C3D4E5F6G7", "K7Q2-9XMD", citizenKey, ""]
        for _ in benchmark.scaledIterations {
            var command = RedisCommand(argumentCount: 21, bytesCapacity: 1_024)  // as StoredFunction.command
            command.append("FCALL")
            command.append("allot_reserve_0123456789ab")
            command.append(10)
            for suffix in suffixes { command.append(tag, suffix) }
            command.append(tag, ":bucket:ip:", "203.0.113.7")
            command.append(tag, ":bucket:c:", citizenKey)
            command.append(tag, ":idem:", "-")
            for argument in arguments { command.append(argument) }
            command.append(86_400)
            command.append(1_000_000)
            blackHole(command.bytes)
        }
    }

    let policy = BucketPolicy(rate: 2, burst: 5)!
    Benchmark("TokenBucket.take", configuration: .init(scalingFactor: .kilo)) { benchmark in
        var bucket = TokenBucket(policy: policy, nowMicros: 0)
        var now: Int64 = 0
        for _ in benchmark.scaledIterations {
            now += 400_000
            blackHole(bucket.take(policy: policy, nowMicros: now))
        }
    }

    // One persister batch: 1 000 upserts in one transaction, in id order.
    // Without the commit's fsync (synchronous=OFF): that is the disk's time,
    // too noisy on a shared machine to show a regression of ours.
    // In memory-backed /dev/shm when there is one, and a fixed number of
    // batches: the same file size every run, no disk in the measurement.
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory()
    let directory = base + "allot-bench-" + UUID().uuidString
    Benchmark("SQLite.batchOf1000ReservationUpserts",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .one,
                                   maxDuration: .seconds(30), maxIterations: 50,
                                   // Its time varies by half on this shared box; allocations do not.
                                   thresholds: [.wallClock: BenchmarkThresholds(relative: [.p50: 60.0, .p75: 60.0, .p90: 60.0]),
                                                .mallocCountTotal: BenchmarkThresholds(relative: [.p50: 5.0, .p75: 5.0, .p90: 5.0])],
                                   setup: { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) },
                                   teardown: { try? FileManager.default.removeItem(atPath: directory) })) { benchmark in
        let database = try Schema.open(path: directory + "/bench-\(UUID().uuidString).db")
        try database.execute("PRAGMA synchronous = OFF")
        var next: UInt64 = 1_767_225_600_000
        var random = SystemRandomNumberGenerator()
        for _ in benchmark.scaledIterations {
            try database.transaction {
                let upsert = try database.statement(Schema.reservationUpsert)
                for _ in 0..<1_000 {
                    next += 1
                    let id = ReservationID.make(millis: next, route: 1, cipher: routes, using: &random).text
                    try upsert.run([.text(id), .text("masks-w12"), .text("pharmacy-17"), .text("pharmacy-17-h09"),
                                    .text("confirmed"), .text("K7Q2-9XMD"), .text("0123456789abcdef0123456789abcdef"),
                                    .integer(Int64(next)), .integer(Int64(next))])
                }
            }
        }
    }
}
