import EventHTTP
import Foundation
import Testing

@Suite struct GzipTests {
    /// What `Gzip.compress` makes, `gzip -d` (another implementation) reads
    /// back byte for byte.
    @Test func gzipDecompressesToTheSameBytes() throws {
        var text = ""
        for index in 0..<300 { text += #"{"id":"s\#(index)","remaining":\#(index * 7 % 13)},"# }
        let original = Array(text.utf8)
        let packed = try #require(Gzip.compress(original))
        #expect(packed.count < original.count / 4)
        #expect(try gunzip(packed) == original)
        #expect(try gunzip(try #require(Gzip.compress([]))) == [])
    }

    @Test func acceptEncodingTakesGzipUnlessRefused() {
        #expect(Gzip.isAccepted(by: "gzip"))
        #expect(Gzip.isAccepted(by: "gzip, deflate, br"))
        #expect(Gzip.isAccepted(by: "br;q=1.0, GZIP;q=0.5"))
        #expect(Gzip.isAccepted(by: "*"))
        #expect(Gzip.isAccepted(by: "x-gzip"))
        #expect(!Gzip.isAccepted(by: "gzip;q=0"))
        #expect(!Gzip.isAccepted(by: "gzip; q=0.000"))
        #expect(!Gzip.isAccepted(by: "deflate, br"))
        #expect(!Gzip.isAccepted(by: "identity"))
        #expect(!Gzip.isAccepted(by: ""))
        #expect(!Gzip.isAccepted(by: "gzipped"))
        // `*` speaks only for codings not named (RFC 9110, 12.5.3).
        #expect(!Gzip.isAccepted(by: "gzip;q=0, *"))
        #expect(!Gzip.isAccepted(by: "*;q=0"))
        #expect(Gzip.isAccepted(by: "br, *;q=0.1"))
    }

    private func gunzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "gzip -dc"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(bytes))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return Array(data)
    }
}
