// The file-system side of loading: which files count, in what order, and how an include path
// resolves. Kept apart so the parser and the matcher stay free of I/O.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-system helpers for the loader, with the reference's rules and error texts.
enum PolicyFiles {
    /// A policy file found in a directory.
    struct Entry {
        let name: String
        let path: String
        let directory: String
    }

    /// Python's `PurePath.suffix`: from the last dot, unless that dot starts or ends the name.
    static func suffix(_ name: String) -> String {
        let scalars = Array(name.unicodeScalars)
        guard let dot = scalars.lastIndex(of: "."), dot > 0, dot < scalars.count - 1 else { return "" }
        var out = ""
        out.unicodeScalars.append(contentsOf: scalars[dot...])
        return out
    }

    /// File names may use only `[0-9a-z_.-]`.
    static func isValidName(_ name: String) -> Bool {
        name.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "0"..."9", "a"..."z", "_", ".", "-": return true
            default: return false
            }
        }
    }

    /// Code-point ("C" locale) order; for UTF-8 this is byte order.
    static func codePointLess(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }

    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// The policy files of one directory, sorted: regular files (symlinks followed) named
    /// `*.policy`, not starting with a dot. Any such file with a name outside `[0-9a-z_.-]`
    /// fails the whole load, even if another directory would have shadowed it.
    static func policyFiles(in directory: String) throws(PolicyLoadError) -> [Entry] {
        let printable = PythonText.normalizePath(directory)
        guard let handle = opendir(directory) else {
            let code = errno
            throw PolicyLoadError.failedToLoad(printable, errno: code, reason: errorText(code))
        }
        defer { closedir(handle) }
        var entries: [Entry] = []
        while let record = readdir(handle) {
            let name = withUnsafePointer(to: record.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." || name.hasPrefix(".") { continue }
            if suffix(name) != ".policy" { continue }
            let path = PythonText.join(printable, name)
            if !isRegularFile(path) { continue }
            entries.append(Entry(name: name, path: path, directory: printable))
        }
        entries.sort { codePointLess($0.name, $1.name) }
        if let bad = entries.first(where: { !isValidName($0.name) }) {
            throw PolicyLoadError.invalidFilename(bad.path)
        }
        return entries
    }

    /// Reads a whole file as UTF-8 text.
    static func readText(_ path: String) throws(PolicyLoadError) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            let code = errno
            throw PolicyLoadError.failedToLoad(path, errno: code, reason: errorText(code))
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw PolicyLoadError.failedToLoad(path, errno: code, reason: errorText(code))
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw PolicyLoadError(path: path, message: "failed to load \(path) file: not valid UTF-8")
        }
        return text
    }

    private static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return text(of: buffer)
    }

    /// A NUL-terminated C buffer as a String.
    private static func text(of buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func symlinkTarget(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        buffer[count] = 0
        return text(of: buffer)
    }

    /// `pathlib.Path.resolve()` (not strict): an absolute path with symlinks and `..` resolved
    /// as far as the path exists; the rest is kept as written.
    static func resolve(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : currentDirectory() + "/" + path
        var pending = absolute.split(separator: "/").map(String.init)
        pending.reverse()  // popLast() walks the path from the front
        var resolved: [String] = []
        var symlinksFollowed = 0
        while let component = pending.popLast() {
            if component.isEmpty || component == "." { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let candidate = "/" + (resolved + [component]).joined(separator: "/")
            if symlinksFollowed < 40, let target = symlinkTarget(candidate) {
                symlinksFollowed += 1
                if target.hasPrefix("/") { resolved.removeAll() }
                pending.append(contentsOf: target.split(separator: "/").map(String.init).reversed())
                continue
            }
            resolved.append(component)
        }
        return "/" + resolved.joined(separator: "/")
    }
}
