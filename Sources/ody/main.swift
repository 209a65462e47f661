// ody: the Odyssey admin CLI. Talks to odysseyd through the admin socket only.
import ArgumentParser

struct Ody: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ody",
        abstract: "Administer an Odyssey host (domains, plugins, policy).",
        discussion: """
            ody finds the daemon through --socket PATH, else $ODYSSEY_SOCKET, else admin_socket
            in the config file (--config, $ODYSSEY_CONFIG, /etc/odyssey/odyssey.toml), else
            /run/odyssey/admin.sock.

            Examples:
              ody status
              ody plugins --json
              ody backend define test1 --vmm libvirt --memory 256
              ody backend start test1 --vmm libvirt
            """,
        subcommands: [Status.self, Plugins.self, Run.self, PolicyCommand.self, Backend.self])
}

Ody.main()
