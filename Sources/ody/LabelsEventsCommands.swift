// ody labels and ody events.
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Host

struct Labels: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "labels", abstract: "List labels: index, name, colour.")
    @OptionGroup var client: ClientOptions
    func run() throws {
        var rows = [["INDEX", "LABEL", "COLOR"]]
        for l in try client.text("admin.label.List").split(separator: "\n").map(String.init) {
            let color = try client.text("admin.label.Get", l)
            rows.append([try client.text("admin.label.Index", l), Terminal.paint(l, color), color])
        }
        printTable(rows)
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", 
        abstract: "Follow admin events (domain-add, property-set:..., domain-start...) until interrupted.",
        discussion: "Each line: SUBJECT EVENT key=value...; SUBJECT is '-' for system-wide events.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Only this domain's events.") var name: String?

    func run() throws {
        do {
            try client.client.events(dest: name ?? "dom0") { e in
                if e.name == "connection-established" { return true }
                let args = e.orderedArguments.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
                let line = "\(e.subject.isEmpty ? "-" : e.subject) \(e.name)\(args.isEmpty ? "" : " " + args)\n"
                return writeStdout(line)   // unbuffered: one line per event; stop when stdout is gone
            }
        } catch {
            printError("ody: \(client.describe(error, method: "admin.Events", dest: name ?? "dom0"))")
            throw ExitCode(1)
        }
        printError("ody: odysseyd closed the event stream")
        throw ExitCode(1)
    }
}
