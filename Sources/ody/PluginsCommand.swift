import ArgumentParser
import Host

struct Plugins: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plugins", 
        abstract: "List loaded plugins and refused libraries.",
        discussion: "Each plugin with its id, version, license, negotiated ABI, factories and capabilities; each refused library with its reason.")
    @OptionGroup var client: ClientOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        let bytes = try client.call("admin.odyssey.Plugins")
        if json { print(String(decoding: bytes, as: UTF8.self)); return }
        let r = try decodeJSON(PluginReport.self, bytes)
        print("host ABI \(r.hostABI); \(r.plugins.count) plugin(s) loaded, \(r.refused.count) refused")
        for p in r.plugins {
            print("\n\(p.id) \(p.version)  [\(p.license)]  ABI \(p.abi)")
            if !p.description.isEmpty { print("  \(p.description)") }
            print("  library: \(p.library)")
            for f in p.factories {
                let caps = f.capabilities.isEmpty ? "-" : f.capabilities.joined(separator: ", ")
                print("  \(f.kind) factory '\(f.name)'  capabilities: \(caps)")
            }
        }
        if !r.refused.isEmpty {
            print("\nrefused:")
            for x in r.refused { print("  \(x.path): \(x.reason)") }
        }
    }
}
