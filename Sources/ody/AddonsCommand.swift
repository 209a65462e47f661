import ArgumentParser
import Host

struct Addons: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "addons",
        abstract: "List installed add-ons: their services, commands and default policy.",
        discussion: """
            An add-on is a plugin (.so + manifest) in a plugin directory. Its services run in
            the admin domain ("admin") or inside domains ("domain"); its commands are on the
            PATH in every domain (/.odyssey/addons/bin); its default policy file is read after
            every file of the policy directories, so a file of the same name in
            /etc/odyssey/policy.d replaces it and a lower-numbered file takes precedence.
            Install one by copying its files into a plugin directory, then reload odysseyd
            (kill -HUP $(cat STATE_DIR/odysseyd.pid)).
            """)
    @OptionGroup var client: ClientOptions
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Flag(name: .long, help: "Also print each add-on's default policy lines.") var policy = false

    func run() throws {
        let bytes = try client.call("admin.odyssey.Addons")
        if json { print(String(decoding: bytes, as: UTF8.self)); return }
        let r = try decodeJSON(AddonReport.self, bytes)
        if r.addons.isEmpty { print("no add-ons installed") }
        for a in r.addons {
            print("\(a.id) \(a.version)" + (a.factory == a.id ? "" : "  (factory \(a.factory))"))
            if !a.description.isEmpty { print("  \(a.description)") }
            for s in a.services {
                print("  service  \(s.name)  " + (s.side == "admin" ? "(in the admin domain)" : "(in domains)"))
            }
            if !a.commands.isEmpty { print("  commands \(a.commands.joined(separator: ", "))") }
            if !a.events.isEmpty { print("  events   \(a.events.joined(separator: ", "))") }
            if let file = a.policyFile {
                print("  policy   \(file)" + (a.policyOverriddenBy.map { "  (replaced by \($0)/\(file))" } ?? ""))
                if policy, let text = a.policyText {
                    for line in text.split(separator: "\n") where !line.hasPrefix("#") { print("           \(line)") }
                }
            }
        }
        if !r.refused.isEmpty {
            print("\nrefused plugins (see ody plugins):")
            for x in r.refused { print("  \(x.path): \(x.reason)") }
        }
    }
}
