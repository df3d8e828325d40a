@testable import AllotDomain
import Testing

struct CampaignBucketsTests {
    @Test func countsOutsideTheRangeAreRefused() {
        #expect(CampaignBuckets(0) == nil && CampaignBuckets(65) == nil && CampaignBuckets(-1) == nil)
        #expect(CampaignBuckets(1)?.count == 1 && CampaignBuckets(64)?.count == 64)
    }

    @Test func aCitizensBucketIsTheirKeysFirst64BitsModuloTheCount() {
        let sixteen = CampaignBuckets(16)!
        #expect(sixteen.bucket(ofCitizenKey: "0000000000000000ffffffffffffffff") == 0)
        #expect(sixteen.bucket(ofCitizenKey: "000000000000000fffffffffffffffff") == 15)
        #expect(sixteen.bucket(ofCitizenKey: "ffffffffffffffff0000000000000000") == Int(UInt64.max % 16))
        #expect(CampaignBuckets(3)!.bucket(ofCitizenKey: "0000000000000007" + String(repeating: "0", count: 16)) == 1)
        #expect(CampaignBuckets.single.bucket(ofCitizenKey: "ffffffffffffffff0000000000000000") == 0)
    }

    @Test func keyedCitizensSpreadEvenlyOverBuckets() {
        let keyer = CitizenKeyer(secret: Array(repeating: 7, count: 32))
        let buckets = CampaignBuckets(16)!
        var counts = Array(repeating: 0, count: 16)
        for citizen in 0..<16_000 { counts[buckets.bucket(ofCitizenKey: keyer.citizenKey(normalizedID: "c\(citizen)"))] += 1 }
        // 1,000 expected in each; 5 standard deviations is ±160.
        #expect(counts.allSatisfy { (840...1_160).contains($0) }, "\(counts)")
    }

    @Test func routesAreConsecutiveAndNameTheirBucket() {
        let buckets = CampaignBuckets(4)!
        #expect((0..<4).map { buckets.route(ofBucket: $0, firstRoute: 10) } == [10, 11, 12, 13])
        #expect([9, 10, 13, 14].map { buckets.bucket(ofRoute: $0, firstRoute: 10) } == [nil, 0, 3, nil])
    }

    @Test func theGlobalRateIsSharedAndEveryShareIsAValidPolicy() {
        let policy = BucketPolicy(rate: 100, burst: 30)!
        #expect(CampaignBuckets(16)!.share(of: policy) == BucketPolicy(rate: 6.25, burst: 2))
        #expect(CampaignBuckets.single.share(of: policy) == policy)
        // The smallest policy still gives every bucket one token and the least rate.
        #expect(CampaignBuckets(64)!.share(of: BucketPolicy(rate: 0.001, burst: 1)!) == BucketPolicy(rate: 0.001, burst: 1))
    }

    @Test func refillsHandThePoolOutInAboutTwiceTheCountMoves() {
        #expect(CampaignBuckets(16)!.refillPlaces(capacity: 3_200) == 100)
        #expect(CampaignBuckets(16)!.refillPlaces(capacity: 10) == 10)
    }
}
