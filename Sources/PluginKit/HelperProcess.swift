// Runs a helper program a plugin needs (qemu-img, mke2fs...) with an argv,
// never a shell: paths come from the host and may hold any character but a
// control one. Stdin is /dev/null; what it says on stdout and stderr is
// bounded (the first 2 KiB) and becomes the error's text.
import Glibc

public enum HelperProcess {
    public struct Failure: Error { public let message: String }

    /// Runs `argv` (argv[0] looked up in PATH), waits, and fails with what it
    /// said. `hint`: added to the error when argv[0] is not installed.
    public static func run(_ argv: [String], hint: String = "") throws(Failure) {
        var fds: [Int32] = [0, 0]
        // pipe2 is not visible to Swift here; close-on-exec right after (the
        // window only matters to a child another thread spawns in between).
        guard pipe(&fds) == 0 else { throw Failure(message: "pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, nil, &cargs, environ)
        Glibc.close(fds[1])
        defer { Glibc.close(fds[0]) }
        guard rc == 0 else {
            throw Failure(message: "cannot run \(argv[0]): \(String(cString: strerror(rc)))\(rc == ENOENT && !hint.isEmpty ? " (\(hint))" : "")")
        }
        var output: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1024)
        while true {
            let n = read(fds[0], &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if output.count < 2048 { output += buf[0..<min(n, 2048 - output.count)] }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0, code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            // What it said first: a plugin's error message is bounded, and
            // the helper's stderr names the file (a whole argv would crowd it out).
            let text = String(decoding: output, as: UTF8.self).split(separator: "\n").joined(separator: "; ")
            throw Failure(message: "\(argv.prefix(2).joined(separator: " ")) failed (\(exited ? "exit \(code)" : "signal \(status & 0x7f)")): \(text)")
        }
    }
}
