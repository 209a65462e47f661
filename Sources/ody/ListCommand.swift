// ody ls: the domains as qvm-ls shows them, label in its colour.
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Host

struct DomainRow: Codable {
    var name: String
    var state: String
    var `class`: String
    var label: String
    var template: String?
    var provider: String?
    var uuid: String
}

struct Ls: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", 
        abstract: "List domains (qvm-ls): name, state, class, label, template, provider.",
        discussion: "Colours follow the labels on a terminal; NO_COLOR or a pipe turns them off.")
    @OptionGroup var client: ClientOptions
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Argument(help: "Only these domains (default: all).") var names: [String] = []

    func run() throws {
        var lines: [Substring] = []
        if names.isEmpty { lines = try client.text("admin.vm.List").split(separator: "\n") }
        else { for n in names { lines += try client.text("admin.vm.List", dest: n).split(separator: "\n") } }
        var rows: [DomainRow] = []
        for line in lines {
            let name = String(line.split(separator: " ")[0])
            let props = Dictionary(PropertyLine.all(try client.text("admin.vm.property.GetAll", dest: name)).map { ($0.0, $0.1.value) },
                                   uniquingKeysWith: { a, _ in a })
            rows.append(DomainRow(name: name, state: field("state", String(line)) ?? "NA", class: field("class", String(line)) ?? "?",
                                  label: props["label"] ?? "", template: props["template"].flatMap { $0.isEmpty ? nil : $0 },
                                  provider: props["vmm"].flatMap { $0.isEmpty ? nil : $0 }, uuid: field("uuid", String(line)) ?? ""))
        }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(rows), as: UTF8.self))
            return
        }
        var colors: [String: String] = [:]
        if Terminal.color {
            for l in Set(rows.map(\.label)) { if case .success(let c) = client.attempt("admin.label.Get", l) { colors[l] = c } }
        }
        var table = [["NAME", "STATE", "CLASS", "LABEL", "TEMPLATE", "PROVIDER"]]
        for r in rows {
            let label = colors[r.label].map { Terminal.paint(r.label, $0) } ?? r.label
            table.append([r.name, r.state, r.class, label, r.template ?? "-", r.provider ?? (r.class == "AdminVM" ? "-" : "?")])
        }
        printTable(table)
    }
}
