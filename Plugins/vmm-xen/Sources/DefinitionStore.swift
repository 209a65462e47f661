// Domain definitions for Xen. libxl keeps no definitions of its own (a
// domain exists only while it runs), so this plugin keeps them: in memory,
// and in `<state_dir>/domains`, rewritten atomically (temp file, fsync,
// rename, fsync of the directory) on every change.
//
// File format, one domain per line, tab-separated `key=value` fields, every
// value percent-encoded (names and params come from users):
//   name=work	uuid=...	memory_mib=400	maxmem_mib=0	vcpus=2	p.kernel=%2Fboot%2Fvmlinuz
import Glibc

/// A class, not a struct: as a struct its type metadata is reached through a
/// GOT entry in debug builds, which drags a (local) symbol into .dynsym.
final class XenDefinition {
    var name: String
    var uuid: String
    var memoryMiB: UInt64
    var maxmemMiB: UInt64
    var vcpus: UInt32
    var params: [String: String]

    init(name: String, uuid: String, memoryMiB: UInt64, maxmemMiB: UInt64, vcpus: UInt32, params: [String: String]) {
        self.name = name; self.uuid = uuid; self.memoryMiB = memoryMiB; self.maxmemMiB = maxmemMiB
        self.vcpus = vcpus; self.params = params
    }
}

enum Percent {
    /// Appends `s` percent-encoded to `out`: bytes, not String appends, since
    /// the whole file is rendered on every change (hundreds of definitions:
    /// per-character String appends made that seconds a change under TCG).
    static func encode(_ s: String, into out: inout [UInt8]) {
        let hex: StaticString = "0123456789ABCDEF"
        for b in s.utf8 {
            let safe = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
                || b == 0x2d || b == 0x2e || b == 0x5f
            if safe { out.append(b) } else {
                out.append(0x25)
                out.append(hex.utf8Start[Int(b >> 4)])
                out.append(hex.utf8Start[Int(b & 15)])
            }
        }
    }

    static func decode(_ s: Substring) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b != 0x25 { bytes.append(b); continue }
            guard it.count >= 2, let hi = hexValue(it.removeFirst()), let lo = hexValue(it.removeFirst()) else { return nil }
            bytes.append(hi << 4 | lo)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}

struct StoreError: Error {
    let message: String
    let errno: Int32
}

/// Not thread-safe by itself: XenVmm calls it under its lock.
final class DefinitionStore {
    let directory: String
    var file: String { directory + "/domains" }
    private(set) var domains: [String: XenDefinition] = [:]

    init(directory: String) { self.directory = directory }

    /// Creates the directory (0700) if needed and reads the file if present.
    func load() throws(StoreError) {
        try makeDirectories(directory)
        guard let fp = fopen(file, "r") else {
            if errno == ENOENT { return }
            throw StoreError(message: "cannot read \(file): \(String(cString: strerror(errno)))", errno: errno)
        }
        defer { fclose(fp) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, fp)
            if n > 0 { text += chunk[..<n] }
            if n < chunk.count { break }
        }
        guard ferror(fp) == 0 else { throw StoreError(message: "cannot read \(file)", errno: EIO) }
        var lineNo = 0
        for line in text.split(separator: 0x0a, omittingEmptySubsequences: false) {
            lineNo += 1
            if line.isEmpty { continue }
            guard let d = parse(String(decoding: line, as: UTF8.self)) else {
                throw StoreError(message: "\(file):\(lineNo): malformed domain record", errno: EINVAL)
            }
            domains[d.name] = d
        }
    }

    private func parse(_ line: String) -> XenDefinition? {
        let d = XenDefinition(name: "", uuid: "", memoryMiB: 0, maxmemMiB: 0, vcpus: 0, params: [:])
        for field in line.split(separator: "\t") {
            guard let eq = field.firstIndex(of: "="), let value = Percent.decode(field[field.index(after: eq)...]) else { return nil }
            let key = field[..<eq]
            switch key {
            case "name": d.name = value
            case "uuid": d.uuid = value
            case "memory_mib": guard let v = UInt64(value) else { return nil }; d.memoryMiB = v
            case "maxmem_mib": guard let v = UInt64(value) else { return nil }; d.maxmemMiB = v
            case "vcpus": guard let v = UInt32(value) else { return nil }; d.vcpus = v
            default:
                guard key.hasPrefix("p."), let k = Percent.decode(key.dropFirst(2)) else { return nil }
                d.params[k] = value
            }
        }
        return d.name.isEmpty ? nil : d
    }

    private func render() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(domains.count * 160)
        func field(_ key: String, _ value: String, first: Bool = false) {
            if !first { out.append(0x09) }
            out.append(contentsOf: key.utf8)
            out.append(0x3d)
            Percent.encode(value, into: &out)
        }
        for d in domains.values.sorted(by: { $0.name < $1.name }) {
            field("name", d.name, first: true)
            field("uuid", d.uuid)
            field("memory_mib", String(d.memoryMiB))
            field("maxmem_mib", String(d.maxmemMiB))
            field("vcpus", String(d.vcpus))
            for (k, v) in d.params.sorted(by: { $0.key < $1.key }) {
                out.append(0x09)
                out.append(contentsOf: "p.".utf8)
                Percent.encode(k, into: &out)
                out.append(0x3d)
                Percent.encode(v, into: &out)
            }
            out.append(0x0a)
        }
        return out
    }

    /// Applies `change` and persists; on a write failure the memory copy is rolled back.
    func update(_ change: (inout [String: XenDefinition]) -> Void) throws(StoreError) {
        let before = domains
        change(&domains)
        do { try save() } catch { domains = before; throw error }
    }

    private func save() throws(StoreError) {
        let tmp = file + ".tmp"
        let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(message: "cannot write \(tmp): \(String(cString: strerror(errno)))", errno: errno) }
        let bytes = render()
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                Glibc.close(fd); unlink(tmp)
                throw StoreError(message: "cannot write \(tmp): \(String(cString: strerror(e)))", errno: e)
            }
            off += n
        }
        if fsync(fd) != 0 {
            let e = errno
            Glibc.close(fd); unlink(tmp)
            throw StoreError(message: "cannot fsync \(tmp): \(String(cString: strerror(e)))", errno: e)
        }
        Glibc.close(fd)
        guard rename(tmp, file) == 0 else {
            let e = errno
            unlink(tmp)
            throw StoreError(message: "cannot rename \(tmp) to \(file): \(String(cString: strerror(e)))", errno: e)
        }
        let dfd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); Glibc.close(dfd) }
    }

    private func makeDirectories(_ path: String) throws(StoreError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw StoreError(message: "cannot create \(prefix): \(String(cString: strerror(errno)))", errno: errno)
            }
        }
    }
}
