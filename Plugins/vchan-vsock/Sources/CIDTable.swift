// Stable guest CIDs: `base` + an index per domain, kept in a small text file
// ("NAME CID" per line) so a domain keeps its CID across host restarts (a
// running VM's CID cannot change under it).
import Glibc
import MuxVchanCore
import StreamMux

final class CIDTable: @unchecked Sendable {
    let path: String
    let base: UInt32
    private let monitor = MuxMonitor()
    private var byName: [String: UInt32] = [:]

    init(path: String, base: UInt32) { self.path = path; self.base = base }

    func load() -> MuxError? {
        let dir = String(path[..<path.lastIndex(of: "/")!])
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { return .io("mkdir \(dir)", errno: errno) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return errno == ENOENT ? nil : .io("open \(path)", errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 2, MuxVchanOps.isValidDomainName(String(f[0])), let cid = UInt32(f[1]), cid >= 3 else {
                return .invalid("\(path): malformed line \"\(line)\" (want NAME CID)")
            }
            byName[String(f[0])] = cid
        }
        return nil
    }

    func domain(of cid: UInt32) -> String? { monitor.locked { byName.first { $0.value == cid }?.key } }

    /// The domain's CID, assigned (and recorded) on first use.
    func cid(for domain: String) -> Result<UInt32, MuxError> {
        monitor.locked {
            if let c = byName[domain] { return .success(c) }
            let used = Set(byName.values)
            var c = base
            while used.contains(c) { c += 1 }
            byName[domain] = c
            let text = byName.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)\n" }.joined()
            let tmp = path + ".new"
            let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            if fd < 0 { byName[domain] = nil; return .failure(.io("open \(tmp)", errno: errno)) }
            let bytes = Array(text.utf8)
            let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) } == bytes.count && fsync(fd) == 0
            close(fd)
            guard ok, rename(tmp, path) == 0 else { byName[domain] = nil; return .failure(.io("write \(path)", errno: errno)) }
            return .success(c)
        }
    }
}
