// How ody finds the daemon, shared by every subcommand.
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Host
import Qrexec

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

    /// Inside a domain (the agent's local request socket exists and neither
    /// --socket nor ODYSSEY_SOCKET was given): the agent's socket; ody then
    /// speaks qrexec, under the host's policy, instead of the admin socket.
    var agentSocket: String? {
        if socket != nil { return nil }
        let env = ProcessInfo.processInfo.environment
        if let s = env["ODYSSEY_SOCKET"], !s.isEmpty { return nil }
        let path = env[LocalCall.socketPathVariable].flatMap { $0.isEmpty ? nil : $0 } ?? LocalCall.defaultSocketPath
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK else { return nil }
        return path
    }

    var client: AdminClient { agentSocket.map { AdminClient(agentSocket: $0) } ?? AdminClient(socketPath: socketPath) }

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
    Sys.printError(s)
}

func decodeJSON<T: Decodable>(_ t: T.Type, _ bytes: [UInt8]) throws -> T {
    do { return try JSONDecoder().decode(t, from: Data(bytes)) } catch {
        printError("ody: unexpected reply from odysseyd: \(error)")
        throw ExitCode(1)
    }
}

/// Unbuffered writes: progress lines and event streams must appear at once.
func writeStderr(_ s: String) { try? Sys.writeAll(2, Array(s.utf8), what: "stderr") }
/// False once stdout is gone (a reader such as `head` exited): callers stop.
@discardableResult
func writeStdout(_ s: String) -> Bool { (try? Sys.writeAll(1, Array(s.utf8), what: "stdout")) != nil }
