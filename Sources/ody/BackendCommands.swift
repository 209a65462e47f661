// `ody backend ...`: the raw vmm backend (HAL) view of domains, useful to
// check a backend works before the domain store uses it.
import ArgumentParser
import Host

struct Backend: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "backend", 
        abstract: "Drive a vmm backend directly (define, start, stop... its domains).",
        discussion: """
            These commands talk to one isolation provider (--vmm NAME, default: [vmm] default
            in the config) without the domain store. Example with the libvirt test driver:
              ody backend define demo1 --vmm libvirt --memory 128
              ody backend start demo1 --vmm libvirt
              ody backend list --vmm libvirt
            """,
        subcommands: [List.self, Define.self, Info.self, Start.self, Shutdown.self, Kill.self, Pause.self,
                      Unpause.self, Undefine.self])

    struct Target: ParsableArguments {
        @OptionGroup var client: ClientOptions
        @Option(name: .long, help: ArgumentHelp("vmm factory (native, libvirt, xen...).", valueName: "NAME"))
        var vmm: String?
        @Argument(help: "Domain name.") var name: String

        func call(_ method: String, payload: [UInt8] = []) throws -> [UInt8] {
            try client.call("admin.odyssey.vmm.\(method)", argument: vmm ?? "", dest: name, payload: payload)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the backend's domains and their states.")
        @OptionGroup var client: ClientOptions
        @Option(name: .long, help: ArgumentHelp("vmm factory.", valueName: "NAME")) var vmm: String?
        func run() throws {
            print(String(decoding: try client.call("admin.odyssey.vmm.List", argument: vmm ?? ""), as: UTF8.self), terminator: "")
        }
    }

    struct Define: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "define", abstract: "Define a domain in the backend.")
        @OptionGroup var target: Target
        @Option(help: "Memory in MiB.") var memory: UInt64 = 400
        @Option(help: "Number of virtual CPUs.") var vcpus: UInt32 = 2
        @Option(name: .customLong("param"), help: ArgumentHelp("Backend parameter KEY=VALUE (repeatable).", valueName: "KEY=VALUE"))
        var params: [String] = []
        func validate() throws {
            for p in params where !p.contains("=") { throw ValidationError("--param expects KEY=VALUE, got '\(p)'") }
        }
        func run() throws {
            let lines = ["memory=\(memory)", "vcpus=\(vcpus)"] + params
            _ = try target.call("Define", payload: Array(lines.joined(separator: "\n").utf8))
            print("defined \(target.name)")
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "info", abstract: "Show a domain's state as the backend sees it.")
        @OptionGroup var target: Target
        func run() throws { print(String(decoding: try target.call("Info"), as: UTF8.self)) }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a defined domain.")
        @OptionGroup var target: Target
        func run() throws { _ = try target.call("Start"); print("started \(target.name)") }
    }

    struct Shutdown: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "shutdown", abstract: "Shut a domain down and wait until it halts.")
        @OptionGroup var target: Target
        func run() throws { _ = try target.call("Shutdown"); print("shut down \(target.name)") }
    }

    struct Kill: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "kill", abstract: "Stop a domain at once.")
        @OptionGroup var target: Target
        func run() throws { _ = try target.call("Kill"); print("killed \(target.name)") }
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "pause", abstract: "Freeze a running domain.")
        @OptionGroup var target: Target
        func run() throws { _ = try target.call("Pause"); print("paused \(target.name)") }
    }

    struct Unpause: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "unpause", abstract: "Resume a paused domain.")
        @OptionGroup var target: Target
        func run() throws { _ = try target.call("Unpause"); print("unpaused \(target.name)") }
    }

    struct Undefine: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "undefine", abstract: "Remove a halted domain's definition.")
        @OptionGroup var target: Target
        func run() throws { _ = try target.call("Undefine"); print("undefined \(target.name)") }
    }
}
