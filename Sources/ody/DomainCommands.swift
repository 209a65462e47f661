// ody create / start / shutdown / kill / pause / unpause / remove, as
// qvm-create, qvm-start, ... do them, through the Admin API only.
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Host

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", 
        abstract: "Create a domain (qvm-create).",
        discussion: """
            Examples:
              ody create work --template debian --label blue
              ody create debian --class TemplateVM --label black
              ody create build --class StandaloneVM --template debian --label orange --prop memory=2000
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "Name of the new domain.") var name: String
    @Option(name: [.customShort("C"), .long], help: "Class: AppVM, TemplateVM, StandaloneVM, DispVM.") var `class` = "AppVM"
    @Option(name: [.short, .long], help: "Template (AppVM, DispVM) or root to copy (StandaloneVM); default: default_template.")
    var template: String?
    @Option(name: [.short, .long], help: "Label (colour): red, orange, yellow, green, gray, blue, purple, black.") var label: String
    @Option(name: [.customShort("P"), .customLong("prop")], help: ArgumentHelp("Property to set, KEY=VALUE (repeatable).", valueName: "KEY=VALUE"))
    var props: [String] = []

    func validate() throws {
        for p in props where !p.contains("=") { throw ValidationError("--prop expects KEY=VALUE, got '\(p)'") }
    }

    func run() throws {
        let classes = try client.text("admin.vmclass.List").split(separator: "\n").map(String.init)
        guard classes.contains(`class`), `class` != "AdminVM" else {
            printError("ody: unknown class '\(`class`)' (one of: \(classes.filter { $0 != "AdminVM" }.joined(separator: ", ")))")
            throw ExitCode(1)
        }
        let labels = try client.text("admin.label.List").split(separator: "\n").map(String.init)
        guard labels.contains(label) else {
            printError("ody: unknown label '\(label)' (one of: \(labels.joined(separator: ", ")))")
            throw ExitCode(1)
        }
        _ = try client.text("admin.vm.Create.\(`class`)", template ?? "", payload: "name=\(name) label=\(label)")
        for p in props {
            let eq = p.firstIndex(of: "=")!
            let k = String(p[..<eq]), v = String(p[p.index(after: eq)...])
            if case .failure(let e) = client.attempt("admin.vm.property.Set", k, dest: name, payload: v) {
                printError("ody: --prop \(k)=\(v): \(client.describe(e, method: "admin.vm.property.Set", dest: name)); \(name) not created")
                _ = client.attempt("admin.vm.Remove", dest: name)
                throw ExitCode(1)
            }
        }
    }
}

/// The commands that take one or more domain names and call one method each.
protocol PerDomain: ParsableCommand {
    var client: ClientOptions { get }
    var names: [String] { get }
    func act(_ name: String) throws
}

extension PerDomain {
    func run() throws {
        var failed = false
        for n in names {
            do { try act(n) } catch let e as ExitCode { if e.rawValue == 1 { failed = true } else { throw e } }
        }
        if failed { throw ExitCode(1) }
    }
}

struct Start: PerDomain {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start domains (qvm-start); returns once their agent is ready.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Domain names.") var names: [String]
    func act(_ n: String) throws {
        let st = try client.state(n)
        if st != "Halted" { printError("\(n) is already \(st == "Running" ? "running" : "in state \(st)")"); return }
        _ = try client.text("admin.vm.Start", dest: n)
    }
}

struct Shutdown: PerDomain {
    static let configuration = CommandConfiguration(commandName: "shutdown", abstract: "Shut domains down (qvm-shutdown).")
    @OptionGroup var client: ClientOptions
    @Flag(name: .long, help: "Wait until each domain has halted.") var wait = false
    @Flag(name: .long, help: "Shut down even if other domains use it.") var force = false
    @Argument(help: "Domain names.") var names: [String]
    func act(_ n: String) throws {
        let arg = [force ? "force" : nil, wait ? "wait" : nil].compactMap { $0 }.joined(separator: "+")
        _ = try client.text("admin.vm.Shutdown", arg, dest: n)
    }
}

struct Kill: PerDomain {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Stop domains at once (qvm-kill).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Domain names.") var names: [String]
    func act(_ n: String) throws { _ = try client.text("admin.vm.Kill", dest: n) }
}

struct Pause: PerDomain {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Freeze running domains (qvm-pause).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Domain names.") var names: [String]
    func act(_ n: String) throws { _ = try client.text("admin.vm.Pause", dest: n) }
}

struct Unpause: PerDomain {
    static let configuration = CommandConfiguration(commandName: "unpause", abstract: "Resume paused domains (qvm-unpause).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Domain names.") var names: [String]
    func act(_ n: String) throws { _ = try client.text("admin.vm.Unpause", dest: n) }
}

struct Remove: PerDomain {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove halted domains and their volumes (qvm-remove).")
    @OptionGroup var client: ClientOptions
    @Flag(name: [.short, .long], help: "Do not ask for confirmation.") var force = false
    @Argument(help: "Domain names.") var names: [String]
    func act(_ n: String) throws {
        let st = try client.state(n)
        guard st == "Halted" else {
            printError("ody: \(n) is \(st == "Running" ? "running" : st.lowercased()); shut it down first")
            throw ExitCode(1)
        }
        if !force && isatty(0) == 1 {
            writeStderr("Remove \(n) and all its data? [y/N] ")
            guard let answer = readLine(), answer.lowercased().hasPrefix("y") else { printError("not removed: \(n)"); return }
        }
        _ = try client.text("admin.vm.Remove", dest: n)
    }
}
