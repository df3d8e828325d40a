import AllotDomain

/// Valid cn-resident numbers for citizens 0..<count, and back: citizen i is
/// born (1950-01-01 + i / 1000 days) with sequence number i % 1000, so a
/// number found in a file can be traced to the citizen it was made for.
enum CitizenIDs {
    static let region = Array("110105".utf8)
    static let firstDay = CivilDate.days(year: 1950, month: 1, day: 1)

    static func make(_ index: Int) -> String {
        var id: [UInt8] = []
        id.reserveCapacity(18)
        append(index, to: &id)
        return String(decoding: id, as: UTF8.self)
    }

    /// Appends the 18 characters of citizen `index`'s number (hot in the
    /// harness: no String, no String(format:)).
    static func append(_ index: Int, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: region)
        let (year, month, day) = CivilDate.civil(days: firstDay + index / 1000)
        out.appendDecimal(year, width: 4)
        out.appendDecimal(month, width: 2)
        out.appendDecimal(day, width: 2)
        out.appendDecimal(index % 1000, width: 3)
        out.append(CNResidentID.checkCharacter(out[start...]))
    }

    /// The citizen a number was made for, if it is one of ours.
    static func index(of id: some Collection<UInt8>) -> Int? {
        let bytes = Array(id)
        guard bytes.count == 18, Array(bytes[0..<6]) == region,
              let year = Int(String(decoding: bytes[6..<10], as: UTF8.self)),
              let month = Int(String(decoding: bytes[10..<12], as: UTF8.self)),
              let day = Int(String(decoding: bytes[12..<14], as: UTF8.self)),
              let sequence = Int(String(decoding: bytes[14..<17], as: UTF8.self)), (1...12).contains(month)
        else { return nil }
        let index = (CivilDate.days(year: year, month: month, day: day) - firstDay) * 1000 + sequence
        guard index >= 0, Array(make(index).utf8) == bytes else { return nil }
        return index
    }
}

/// Slot popularity: rank r is picked with probability ∝ 1 / (r + 1)^s.
struct Zipf {
    private let cumulative: [Double]

    init(count: Int, exponent: Double) {
        var total = 0.0
        cumulative = (0..<count).map { rank in
            total += 1 / pow(Double(rank + 1), exponent)
            return total
        }.map { $0 / total }
    }

    func sample(_ uniform: Double) -> Int {
        var low = 0, high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < uniform { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

import Foundation
