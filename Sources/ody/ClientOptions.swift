// How ody finds the daemon, shared by every subcommand.
import ArgumentParser
import Foundation
import Host

struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Admin socket of odysseyd.", valueName: "PATH"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("Config file to read admin_socket from.", valueName: "FILE"))
    var config: String?

    var socketPath: String {
        if let socket { return socket }
        let env = ProcessInfo.processInfo.environment
        if let s = env["ODYSSEY_SOCKET"], !s.isEmpty { return s }
        let path = config ?? env["ODYSSEY_CONFIG"] ?? OdysseyConfig.defaultPath
        if FileManager.default.fileExists(atPath: path), let c = try? OdysseyConfig.load(path: path) { return c.adminSocket }
        return OdysseyConfig.defaultSocket
    }

    var client: AdminClient { AdminClient(socketPath: socketPath) }

    /// Calls the daemon; on failure prints the reason and exits 1.
    func call(_ method: String, argument: String = "", dest: String = "dom0", payload: [UInt8] = []) throws -> [UInt8] {
        do {
            return try client.call(AdminRequest(method: method, argument: argument, dest: dest, payload: payload))
        } catch {
            printError("ody: \(error)")
            throw ExitCode(1)
        }
    }
}

func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

func decodeJSON<T: Decodable>(_ t: T.Type, _ bytes: [UInt8]) throws -> T {
    do { return try JSONDecoder().decode(t, from: Data(bytes)) } catch {
        printError("ody: unexpected reply from odysseyd: \(error)")
        throw ExitCode(1)
    }
}
