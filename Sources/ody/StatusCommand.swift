import ArgumentParser
import Host

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show whether odysseyd runs, and its configuration in brief.")
    @OptionGroup var client: ClientOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        let bytes = try client.call("admin.odyssey.Status")
        if json { print(String(decoding: bytes, as: UTF8.self)); return }
        let s = try decodeJSON(StatusReport.self, bytes)
        print("odysseyd \(s.version), pid \(s.pid), up \(Int(s.uptimeSeconds)) s")
        print("  config       \(s.config)")
        print("  state dir    \(s.stateDir)")
        print("  admin socket \(s.adminSocket)")
        print("  plugins      \(s.pluginsLoaded) loaded, \(s.pluginsRefused) refused (see `ody plugins`)")
        let vmm = s.defaultVmm.map { "\($0)" + (s.defaultVmmAvailable ? "" : " (NOT AVAILABLE)") } ?? "none"
        print("  default vmm  \(vmm)")
        print("  default vchan \(s.defaultVchan ?? "none")")
        print("  policy       \(s.policy)")
        if let u = s.usage {
            print("  memory       \(u.memoryCommittedMiB) of \(u.memoryCapacityMiB) MiB committed to running domains")
            print("  disposables  \(u.dispvmsAlive) of \(u.dispvmsTotal); asks pending \(u.asksPending)")
        }
    }
}
