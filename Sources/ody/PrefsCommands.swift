// ody prefs / tags / features: qvm-prefs, qvm-tags, qvm-features.
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Host

struct Prefs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prefs", 
        abstract: "Show or change domain properties (qvm-prefs).",
        discussion: """
              ody prefs work                    every property (D: default value)
              ody prefs work memory             one value
              ody prefs work memory 800         set it
              ody prefs work memory --default   back to the default
              ody prefs --global [PROP [VALUE]] system-wide properties (default_template, default_vmm...)
            An empty VALUE ("") sets a domain property (netvm, template...) to none.
            """)
    @OptionGroup var client: ClientOptions
    @Flag(name: .long, help: "Global properties instead of a domain's.") var global = false
    @Flag(name: [.short, .customLong("default")], help: "Reset the property to its default.") var reset = false
    @Flag(name: .customLong("help-prop"), help: "Show the property's help text.") var help = false
    @Argument(help: "NAME [PROP [VALUE]] (with --global: [PROP [VALUE]]).") var words: [String] = []

    func validate() throws {
        let max = global ? 2 : 3
        guard words.count <= max else { throw ValidationError("too many arguments") }
        if !global && words.isEmpty { throw ValidationError("expected a domain name (or --global)") }
        let propGiven = words.count >= (global ? 1 : 2)
        if (reset || help) && !propGiven { throw ValidationError("--default and --help-prop need a property") }
        if reset && words.count == max { throw ValidationError("--default takes no value") }
    }

    func run() throws {
        let prefix = global ? "admin.property." : "admin.vm.property."
        let dest = global ? "dom0" : words[0]
        let rest = global ? words : Array(words.dropFirst())
        switch rest.count {
        case 0:
            let all = PropertyLine.all(try client.text(prefix + "GetAll", dest: dest))
            printTable(all.map { [$0.0, $0.1.isDefault ? "D" : "-", $0.1.value] })
        case 1 where reset:
            _ = try client.text(prefix + "Reset", rest[0], dest: dest)
        case 1 where help:
            print(try client.text(prefix + "Help", rest[0], dest: dest))
        case 1:
            print(PropertyLine(Substring(try client.text(prefix + "Get", rest[0], dest: dest))).value)
        default:
            _ = try client.text(prefix + "Set", rest[0], dest: dest, payload: rest[1])
        }
    }
}

struct Tags: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tags", 
        abstract: "List, add or remove a domain's tags (qvm-tags).",
        discussion: "  ody tags work\n  ody tags work add managed\n  ody tags work del managed")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Domain name.") var name: String
    @Argument(help: "add|del TAG...") var action: [String] = []

    func validate() throws {
        guard action.isEmpty || (["add", "del", "list"].contains(action[0]) && (action[0] == "list" || action.count >= 2)) else {
            throw ValidationError("expected: ody tags NAME [add|del TAG...]")
        }
    }

    func run() throws {
        switch action.first {
        case "add": for t in action.dropFirst() { _ = try client.text("admin.vm.tag.Set", t, dest: name) }
        case "del":
            for t in action.dropFirst() {
                if case .failure(let e) = client.attempt("admin.vm.tag.Remove", t, dest: name) {
                    if case .remote(let r) = e, r.type == "QubesTagNotFoundError" { printError("ody: \(name) has no tag '\(t)'") }
                    else { printError("ody: \(client.describe(e, method: "admin.vm.tag.Remove", dest: name))") }
                    throw ExitCode(1)
                }
            }
        default: print(try client.text("admin.vm.tag.List", dest: name), terminator: "")
        }
    }
}

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "features", 
        abstract: "Show or change a domain's features (qvm-features).",
        discussion: "  ody features work\n  ody features work service.cups 1\n  ody features work service.cups --unset")
    @OptionGroup var client: ClientOptions
    @Flag(name: [.short, .long], help: "Remove the feature.") var unset = false
    @Argument(help: "Domain name.") var name: String
    @Argument(help: "Feature name.") var key: String?
    @Argument(help: "New value.") var value: String?

    func validate() throws {
        if unset && (key == nil || value != nil) { throw ValidationError("--unset needs a feature name and no value") }
    }

    func run() throws {
        guard let key else {
            let keys = try client.text("admin.vm.feature.List", dest: name).split(separator: "\n").map(String.init)
            printTable(try keys.map { [$0, try client.text("admin.vm.feature.Get", $0, dest: name)] })
            return
        }
        if unset { _ = try client.text("admin.vm.feature.Remove", key, dest: name); return }
        if let value { _ = try client.text("admin.vm.feature.Set", key, dest: name, payload: value); return }
        switch client.attempt("admin.vm.feature.Get", key, dest: name) {
        case .success(let v): print(v)
        case .failure(.remote(let r)) where r.type == "QubesFeatureNotFoundError":
            printError("ody: \(name) has no feature '\(key)'")
            throw ExitCode(1)
        case .failure(let e):
            printError("ody: \(client.describe(e, method: "admin.vm.feature.Get", dest: name))")
            throw ExitCode(1)
        }
    }
}
