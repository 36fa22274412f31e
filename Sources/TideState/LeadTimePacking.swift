import Foundation

/// Lead times of a day packed as little-endian IEEE 754 doubles: compact to store, and read back without a row
/// per value.
enum LeadTimePacking {
    static func append(_ values: [Double], to data: inout Data) {
        for value in values {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
    }

    static func unpack(_ data: Data, into values: inout [Double]) {
        // No reserveCapacity here: called once per day row, an exact reservation would reallocate every time.
        let count = data.count / 8
        data.withUnsafeBytes { raw in
            for index in 0..<count {
                let bits = raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
                values.append(Double(bitPattern: UInt64(littleEndian: bits)))
            }
        }
    }
}
