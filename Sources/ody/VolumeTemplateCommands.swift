// ody volume list|info|revert|resize (qvm-volume) and ody template create.
import ArgumentParser
import FoundationEssentials
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import Host

/// NAME or NAME:VOLUME.
struct VolumeRef {
    var domain: String
    var volume: String?
    init(_ s: String) {
        if let c = s.firstIndex(of: ":") { domain = String(s[..<c]); volume = String(s[s.index(after: c)...]) }
        else { domain = s; volume = nil }
    }
}

struct Volume: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "volume", 
        abstract: "Domain volumes (qvm-volume): list, info, revert, resize.",
        discussion: """
              ody volume list work
              ody volume info work:private
              ody volume revert work:private [REVISION]     (newest revision by default; the domain must be halted)
              ody volume resize work:private 4GiB           (grow only; also while it runs; a VM sees it at its next start)
            """,
        subcommands: [List.self, Info.self, Revert.self, Resize.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "A domain's volumes, their pool and revisions.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Domain names.") var names: [String]
        func run() throws {
            var rows = [["VOLUME", "POOL", "VID", "SAVE_ON_STOP", "REVISIONS"]]
            for n in names {
                for v in try client.text("admin.vm.volume.List", dest: n).split(separator: "\n") {
                    let info = try client.text("admin.vm.volume.Info", String(v), dest: n)
                    let kv = keyValues(info)
                    let revs = try client.text("admin.vm.volume.ListSnapshots", String(v), dest: n).split(separator: "\n").count
                    rows.append(["\(n):\(v)", kv["pool"] ?? "", kv["vid"] ?? "", kv["save_on_stop"] ?? "", String(revs)])
                }
            }
            printTable(rows)
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "info", abstract: "Everything about one volume, with its revisions.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "NAME:VOLUME") var ref: String
        func run() throws {
            let r = VolumeRef(ref)
            guard let v = r.volume else { printError("ody: expected NAME:VOLUME (volumes: root, private, volatile)"); throw ExitCode(1) }
            try checkVolume(client, r.domain, v)
            print(try client.text("admin.vm.volume.Info", v, dest: r.domain), terminator: "")
            let revs = try client.text("admin.vm.volume.ListSnapshots", v, dest: r.domain).split(separator: "\n")
            print("revisions=\(revs.joined(separator: " "))")
        }
    }

    struct Revert: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revert", abstract: "Restore a revision of a halted domain's volume.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "NAME:VOLUME (VOLUME defaults to private)") var ref: String
        @Argument(help: "Revision (default: the newest).") var revision: String?
        func run() throws {
            let r = VolumeRef(ref)
            let v = r.volume ?? "private"
            try checkVolume(client, r.domain, v)
            let st = try client.state(r.domain)
            guard st == "Halted" else { printError("ody: \(r.domain) is \(st.lowercased()); shut it down before reverting"); throw ExitCode(1) }
            let revs = try client.text("admin.vm.volume.ListSnapshots", v, dest: r.domain).split(separator: "\n").map(String.init)
            guard let rev = revision ?? revs.last else { printError("ody: \(r.domain):\(v) has no revisions to revert to"); throw ExitCode(1) }
            guard revs.contains(rev) else {
                printError("ody: \(r.domain):\(v) has no revision '\(rev)' (revisions: \(revs.isEmpty ? "none" : revs.joined(separator: ", ")))")
                throw ExitCode(1)
            }
            _ = try client.text("admin.vm.volume.Revert", v, dest: r.domain, payload: rev)
            print("reverted \(r.domain):\(v) to \(rev)")
        }
    }
}

extension Volume {
    struct Resize: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resize",
            abstract: "Grow a volume (qvm-volume resize); shrinking is refused.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "NAME:VOLUME (VOLUME defaults to private)") var ref: String
        @Argument(help: "New size: bytes, or with a suffix KiB, MiB, GiB, TiB (also K, M, G, T).") var size: String
        func run() throws {
            let r = VolumeRef(ref)
            let v = r.volume ?? "private"
            guard let bytes = Self.parseSize(size) else {
                printError("ody: '\(size)' is not a size (e.g. 4294967296, 4096MiB, 4GiB)")
                throw ExitCode(1)
            }
            try checkVolume(client, r.domain, v)
            _ = try client.text("admin.vm.volume.Resize", v, dest: r.domain, payload: String(bytes))
            print("resized \(r.domain):\(v) to \(bytes) bytes")
        }

        /// "4GiB" -> 4294967296; powers of 1024, as qvm-volume takes them.
        static func parseSize(_ s: String) -> Int64? {
            let units: [(String, Int64)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
                                            ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
            for (suffix, factor) in units where s.hasSuffix(suffix) {
                guard let n = Int64(s.dropLast(suffix.count)), n > 0 else { return nil }
                let (v, overflow) = n.multipliedReportingOverflow(by: factor)
                return overflow ? nil : v
            }
            return Int64(s).flatMap { $0 > 0 ? $0 : nil }
        }
    }
}

func checkVolume(_ client: ClientOptions, _ domain: String, _ volume: String) throws {
    let vols = try client.text("admin.vm.volume.List", dest: domain).split(separator: "\n").map(String.init)
    guard vols.contains(volume) else {
        printError("ody: \(domain) has no volume '\(volume)' (volumes: \(vols.joined(separator: ", ")))")
        throw ExitCode(1)
    }
}

func keyValues(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for line in text.split(separator: "\n") {
        if let eq = line.firstIndex(of: "=") { out[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
    }
    return out
}

struct Template: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "template", 
        abstract: "Create templates.",
        discussion: """
              ody template create debian --from-host              a read-only root from the host's system directories
              ody template create alpine --from-rootfs ./rootfs   a directory or a tarball (.tar, .tar.gz, .tar.xz...)
            """,
        subcommands: [CreateTemplate.self])

    struct CreateTemplate: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a TemplateVM from the host or a root file system.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Name of the new template.") var name: String
        @Flag(name: .customLong("from-host"), help: "Assemble the root from the host's system directories (no download).") var fromHost = false
        @Option(name: .customLong("from-rootfs"), help: ArgumentHelp("A root file system: directory or tarball.", valueName: "DIR|TARBALL"))
        var rootfs: String?
        @Option(name: [.short, .long], help: "Label.") var label = "black"

        func validate() throws {
            guard fromHost != (rootfs != nil) else { throw ValidationError("give exactly one of --from-host and --from-rootfs DIR|TARBALL") }
        }

        func run() throws {
            var payload = "name=\(name) label=\(label)"
            var what = "from the host"
            if let rootfs {
                let abs = URL(fileURLWithPath: rootfs).standardized.path
                guard FileManager.default.fileExists(atPath: abs) else { printError("ody: \(rootfs): no such file or directory"); throw ExitCode(1) }
                payload += "\nsource=\(abs)"
                what = "from \(rootfs)"
            }
            let progress = Progress("creating template \(name) \(what)")
            let result = client.attempt("admin.odyssey.template.Create", fromHost ? "from-host" : "from-rootfs", payload: payload)
            progress.stop()
            switch result {
            case .success(let report):
                let kv = Dictionary(report.split(separator: " ").compactMap { t -> (String, String)? in
                    guard let eq = t.firstIndex(of: "=") else { return nil }
                    return (String(t[..<eq]), String(t[t.index(after: eq)...]))
                }, uniquingKeysWith: { a, _ in a })
                var detail = "\(kv["seconds"] ?? "?") s"
                if fromHost { detail = "\(kv["linked"] ?? "0") files linked, \(kv["copied"] ?? "0") copied, \(kv["excluded"] ?? "0") excluded, " + detail }
                print("created template \(name) (\(detail))")
            case .failure(let e):
                printError("ody: \(client.describe(e, method: "admin.odyssey.template.Create", dest: "dom0"))")
                throw ExitCode(1)
            }
        }
    }
}

/// One line on stderr that counts the seconds while a long call runs (a tty only).
final class Progress: Sendable {
    private let running = Mutex(true)
    private let started = Sys.monotonicSeconds()

    init(_ what: String) {
        guard Terminal.stderrIsTTY else { printError(what + "..."); return }
        Threads.detach { [self] in
            while running.withLock({ $0 }) {
                let tenths = Int((Sys.monotonicSeconds() - started) * 10)
                writeStderr("\r\(what)... \(tenths / 10).\(tenths % 10) s")
                usleep(200_000)
            }
        }
    }

    func stop() {
        running.withLock { $0 = false }
        if Terminal.stderrIsTTY { usleep(210_000); writeStderr("\r\u{1b}[K") }
    }
}
