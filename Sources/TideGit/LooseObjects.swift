internal import CLibgit2
import Foundation
import Synchronization

/// libgit2 1.5 loops for ever on a truncated loose object (libgit2#7342, fixed after the version Debian ships):
/// `tide status`, `plan` and every pass would spin at full CPU, holding the state lock, the first time any walk of
/// history reached it. So before history is read in this process, the repository's loose objects are checked with
/// zlib directly — each file once, while its size and time stay the same — and a damaged one is a clear error that
/// names the file, not a hang. Packed objects are checked by libgit2's indexer as they arrive.
///
/// What must never happen: a read of history that never returns; a damaged object reported as another one; a
/// whole repository inflated again at every pass.
final class LooseObjectCheck: Sendable {
    let objects: String
    /// Files found whole, by path: their size and modification time then.
    private let checked = Mutex<[String: FileStamp]>([:])
    /// Damaged blobs: history can be walked past them (walks read commits and trees), but they are never read here.
    private let damagedBlobs = Mutex<Set<String>>([])
    /// The fan-out directories' modification times when they were last read.
    private let directories = Mutex<[String: Date]>([:])

    struct FileStamp: Equatable {
        var size: Int
        var modified: Date
    }

    init(objects: String) {
        self.objects = objects
    }

    /// Throws `GitError` naming the first damaged loose object.
    func verify() throws {
        for index in 0..<256 {
            let name = String(format: "%02x", index)
            let directory = objects + "/" + name
            guard let modified = Self.attributes(directory)?.modified else { continue }
            if directories.withLock({ $0[name] }) == modified { continue }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for entry in entries where entry.count == 38 && entry.allSatisfy(\.isHexDigit) {
                let path = directory + "/" + entry
                guard let stamp = Self.attributes(path) else { continue }
                if checked.withLock({ $0[path] }) == stamp { continue }
                if let damage = Self.damage(path) {
                    // A blob is read only where a revision's files are (the read check's child, or `blob`, which
                    // refuses it); a damaged commit or tree stops every walk of history.
                    if damage.type == "blob" {
                        damagedBlobs.withLock { _ = $0.insert(name + entry) }
                        continue
                    }
                    throw GitError(
                        code: -1, operation: "read object \(name + entry)",
                        message: "the loose object \(path) (\(damage.type ?? "of unknown type")) is damaged "
                            + "(\(damage.problem)): run git fsck in the repository and restore it — its history is "
                            + "not read until then")
                }
                damagedBlobs.withLock { _ = $0.remove(name + entry) }
                checked.withLock { $0[path] = stamp }
            }
            directories.withLock { $0[name] = modified }
        }
    }

    /// Throws when `id` is a blob found damaged: libgit2 would never finish reading it.
    func refuseDamaged(_ id: String) throws {
        guard damagedBlobs.withLock({ $0.contains(id) }) else { return }
        throw GitError(
            code: -1, operation: "read blob \(id)",
            message: "the loose object \(objects)/\(id.prefix(2))/\(id.dropFirst(2)) is damaged: run git fsck in "
                + "the repository and restore it")
    }

    private static func attributes(_ path: String) -> FileStamp? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let modified = attributes[.modificationDate] as? Date
        else { return nil }
        return FileStamp(size: (attributes[.size] as? NSNumber)?.intValue ?? -1, modified: modified)
    }

    /// What is wrong with the loose object file at `path`, and its type when the header could be read (nil: it
    /// inflates whole, and holds as many bytes as its header says).
    static func damage(_ path: String) -> (type: String?, problem: String)? {
        // Mapped, not read: a large blob costs no memory. Gone meanwhile, or empty (libgit2 refuses an empty object
        // file at once, "object file is empty", without inflating): nothing to say.
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped), !data.isEmpty
        else { return nil }
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return (nil, "cannot start zlib")
        }
        defer { inflateEnd(&stream) }
        var header: [UInt8] = []
        var total = 0
        var output = [UInt8](repeating: 0, count: 65_536)
        let result: Int32 = data.withUnsafeBytes { input in
            stream.next_in = UnsafeMutablePointer(
                mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                let status = output.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = output.count - Int(stream.avail_out)
                if header.count < 64 { header += output.prefix(min(produced, 64 - header.count)) }
                total += produced
                // No progress with all the input given: the stream was cut short.
                if status != Z_OK || produced == 0 { return status }
            }
        }
        let words = header.firstIndex(of: 0).map { String(decoding: header[..<$0], as: UTF8.self) }?
            .split(separator: " ")
        let type = words.flatMap { ["commit", "tree", "blob", "tag"].contains($0.first ?? "") ? String($0[0]) : nil }
        guard result == Z_STREAM_END else {
            // All the input given, output room left, and no end of stream: it was cut short.
            return (type, result == Z_BUF_ERROR || result == Z_OK ? "truncated" : "not a zlib stream (\(result))")
        }
        guard let nul = header.firstIndex(of: 0), let size = words?.last.flatMap({ Int($0) }),
            total == nul + 1 + size
        else {
            return (type, "its header does not match its content")
        }
        return nil
    }
}
