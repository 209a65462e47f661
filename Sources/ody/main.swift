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
              ody addons
              ody template create debian --from-host
              ody create work --template debian --label blue
              ody start work
              ody ls
              ody prefs work memory 800
              ody shutdown --wait work
            """,
        subcommands: [Status.self, Ls.self, Create.self, Start.self, Shutdown.self, Kill.self, Pause.self, Unpause.self,
                      Remove.self, Run.self, Prefs.self, Tags.self, Features.self, Volume.self, Template.self, Labels.self,
                      Events.self, Plugins.self, Addons.self, PolicyCommand.self, Backend.self])
}

QrexecClientCompat.runIfInvoked(CommandLine.arguments)   // called as Qubes' qrexec-client
let arguments = RunFastPath.normalizeDispvm(CommandLine.arguments)
RunFastPath.runIfPlain(arguments)
Ody.main(Array(arguments.dropFirst()))
