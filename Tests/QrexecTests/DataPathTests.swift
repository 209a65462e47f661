// The zero-copy data path (DataPath.swift, MessageReader.receive/streamable):
// headers are still admitted before a body is touched, spliced bodies arrive
// intact and in order, an abandoned body is skipped, and DataClient gives the
// same bytes whether stdin/stdout are files, pipes or /dev/null.
import Glibc
import Qrexec
import XCTest

final class DataPathTests: XCTestCase {
    func socketpair() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(Glibc.socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        return (fds[0], fds[1])
    }

    func pipePair() -> (r: Int32, w: Int32) {
        var p: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&p), 0)
        return (p[0], p[1])
    }

    func send(_ fd: Int32, _ messages: [QrexecMessage]) {
        for m in messages { XCTAssertNoThrow(try FD.writeAll(fd, m.encoded)) }
    }

    static func readAll(_ fd: Int32) -> [UInt8] {
        var all: [UInt8] = [], buf = [UInt8](repeating: 0, count: 65536)
        while true { let n = read(fd, &buf, buf.count); if n <= 0 { break }; all += buf[0..<n] }
        return all
    }

    func randomBytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }

    /// A STDIN body goes from the socket into a pipe; the reader never held
    /// it, and the messages around it come out of next() as before.
    func testReaderStreamsADataBodyIntoAPipe() throws {
        let (a, b) = socketpair()
        defer { close(a); close(b) }
        let body = randomBytes(40000, seed: 1)
        send(b, [.stdin(body), .stderr(Array("ignored".utf8)), .stdin([])])
        var r = MessageReader(direction: .clientToService, version: 4)
        XCTAssertEqual(r.receive(from: a), 8, "one header, not a byte more")
        XCTAssertNil(try r.next())
        XCTAssertEqual(r.streamable(.dataStdin), 40000)
        let p = pipePair()
        var moved = 0
        XCTAssertEqual(SpliceReceiver.pump(&r, .dataStdin, from: a, to: p.w, moved: &moved), .done)
        XCTAssertEqual(moved, 40000)
        close(p.w)
        XCTAssertEqual(Self.readAll(p.r), body)
        close(p.r)
        var rest: [QrexecMessage] = []
        while rest.count < 2 {
            XCTAssertGreaterThan(r.receive(from: a), 0)
            while let m = try r.next() { rest.append(m) }
        }
        XCTAssertEqual(rest, [.stderr(Array("ignored".utf8)), .stdin([])])
    }

    /// An oversized data header is refused before any body byte is read or
    /// offered for streaming.
    func testOversizedDataHeaderIsRefusedBeforeStreaming() {
        let (a, b) = socketpair()
        defer { close(a); close(b) }
        _ = MsgHeader(type: .dataStdin, len: 65537).bytes.withUnsafeBytes { write(b, $0.baseAddress, $0.count) }
        var r = MessageReader(direction: .clientToService, version: 4)
        XCTAssertEqual(r.receive(from: a), 8)
        XCTAssertThrowsError(try r.next()) {
            XCTAssertEqual($0 as? QrexecError, .badLength(.dataStdin, len: 65537, rule: "at most 65536"))
        }
        XCTAssertEqual(r.streamable(.dataStdin), 0)
    }

    /// Only the direction's own data type streams: a caller's STDERR body is
    /// read (and ignored) the ordinary way.
    func testOnlyTheRequestedTypeStreams() throws {
        let (a, b) = socketpair()
        defer { close(a); close(b) }
        send(b, [.stderr([1, 2, 3])])
        var r = MessageReader(direction: .clientToService, version: 4)
        XCTAssertEqual(r.receive(from: a), 8)
        XCTAssertNil(try r.next())
        XCTAssertEqual(r.streamable(.dataStdin), 0)
        XCTAssertEqual(r.receive(from: a), 3)
        XCTAssertEqual(try r.next(), .stderr([1, 2, 3]))
    }

    /// A body whose destination went away mid-way is read and dropped; the
    /// next message is intact.
    func testDiscardRestOfBody() throws {
        let (a, b) = socketpair()
        defer { close(a); close(b) }
        send(b, [.stdin(Array(repeating: 7, count: 1000)), .stdin([])])
        var r = MessageReader(direction: .clientToService, version: 4)
        XCTAssertEqual(r.receive(from: a), 8)
        XCTAssertNil(try r.next())
        var part = [UInt8](repeating: 0, count: 100)
        XCTAssertEqual(read(a, &part, 100), 100)   // as a splice would
        r.bodyMoved(100)
        XCTAssertEqual(r.streamable(.dataStdin), 900)
        r.discardRestOfBody()
        XCTAssertEqual(r.streamable(.dataStdin), 0)
        var got: [QrexecMessage] = []
        while got.isEmpty {
            XCTAssertGreaterThan(r.receive(from: a), 0)
            while let m = try r.next() { got.append(m) }
        }
        XCTAssertEqual(got, [.stdin([])])
    }

    /// SpliceSender frames what a pipe holds: headers of at most one chunk,
    /// each followed by exactly its bytes, readable by the ordinary reader.
    func testSpliceSenderFramesPipeBytes() throws {
        let (a, b) = socketpair()
        defer { close(a); close(b) }
        let p = pipePair()
        defer { close(p.r) }
        let data = randomBytes(150_000, seed: 2)
        let writer = Thread { _ = try? FD.writeAll(p.w, data); close(p.w) }
        writer.start()
        var sender = SpliceSender(type: .dataStdout)
        var out = OutBuffer()
        var sent = 0
        let receiverDone = DispatchSemaphoreLike()
        let received = Box<[UInt8]>([]), sizes = Box<[Int]>([])
        let reader = Thread {
            var s = QrexecStream(fd: b, incoming: .serviceToClient)
            s.version = 4
            while received.value.count < data.count {
                guard case .stdout(let d)? = try? s.receive() else { break }
                sizes.value.append(d.count); received.value += d
            }
            receiverDone.signal()
        }
        reader.start()
        while sent < data.count {
            var pfd = pollfd(fd: p.r, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 1000)
            var avail: Int32 = 0
            XCTAssertEqual(ioctl(p.r, UInt(FIONREAD), &avail), 0)
            guard avail > 0 else { continue }
            let n = min(Int(avail), 65536)
            sender.announce(n, into: &out)
            while sender.owed > 0 || !out.isEmpty {
                if try sender.drain(from: p.r, to: a, out: &out) == .blocked {
                    var w = pollfd(fd: a, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&w, 1, 1000)
                }
            }
            sent += n
        }
        receiverDone.wait()
        XCTAssertEqual(received.value, data)
        XCTAssertTrue(sizes.value.allSatisfy { $0 > 0 && $0 <= 65536 })
    }

    /// DataClient end to end against an echoing fake service, for each kind
    /// of stdin and stdout: the bytes back are the bytes sent.
    func testDataClientSameBytesForFilesPipesAndDevNull() throws {
        let data = randomBytes(3 << 20 | 12345, seed: 3)
        let dir = "/tmp/odyssey-datapath-\(getpid())"
        mkdir(dir, 0o700)
        defer { _ = unlink(dir + "/in"); _ = unlink(dir + "/out"); rmdir(dir) }
        let inFD = open(dir + "/in", O_RDWR | O_CREAT | O_TRUNC, 0o600)
        XCTAssertNoThrow(try FD.writeAll(inFD, data))
        close(inFD)

        for (stdinKind, stdoutKind) in [("file", "file"), ("pipe", "pipe"), ("file", "null"), ("pipe", "file")] {
            let (a, b) = socketpair()
            let service = Thread { Self.echoService(b); close(b) }
            service.start()
            // stdin
            var stdinFD: Int32
            var feeder: Thread?
            if stdinKind == "file" {
                stdinFD = open(dir + "/in", O_RDONLY)
            } else {
                let p = pipePair()
                stdinFD = p.r
                feeder = Thread { _ = try? FD.writeAll(p.w, data); close(p.w) }
                feeder?.start()
            }
            // stdout
            var stdoutFD: Int32
            let got = Box<[UInt8]>([])
            var collector: Thread?
            let done = DispatchSemaphoreLike()
            switch stdoutKind {
            case "file": stdoutFD = open(dir + "/out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            case "null": stdoutFD = open("/dev/null", O_WRONLY)
            default:
                let p = pipePair()
                stdoutFD = p.w
                collector = Thread { got.value = Self.readAll(p.r); close(p.r); done.signal() }
                collector?.start()
            }
            let code = try DataClient.run(channel: a, stdin: stdinFD, stdout: stdoutFD, stderr: -1)
            close(a); close(stdinFD); close(stdoutFD)
            XCTAssertEqual(code, 3, "\(stdinKind) -> \(stdoutKind)")
            switch stdoutKind {
            case "file":
                let f = open(dir + "/out", O_RDONLY); got.value = Self.readAll(f); close(f)
                XCTAssertTrue(got.value == data, "\(stdinKind) -> file: \(got.value.count) bytes back")
            case "pipe":
                done.wait()
                XCTAssertTrue(got.value == data, "\(stdinKind) -> pipe: \(got.value.count) bytes back")
            default: break
            }
        }
    }

    /// Echoes STDIN as STDOUT in the chunks it came in, then EOF and status 3.
    static func echoService(_ fd: Int32) {
        var s = QrexecStream(fd: fd, incoming: .clientToService)
        do {
            try s.handshake()
            while true {
                let m = try s.receive()
                guard case .stdin(let d) = m else { continue }
                try s.send(.stdout(d))   // the empty one is EOF both ways
                if d.isEmpty { break }
            }
            try s.send(.exitCode(3))
        } catch { XCTFail("echo service: \(error)") }
    }
}

/// A counting semaphore (pthread), to wait for a helper thread.
final class DispatchSemaphoreLike: @unchecked Sendable {
    private var mutex = pthread_mutex_t(), cond = pthread_cond_t(), count = 0
    init() { pthread_mutex_init(&mutex, nil); pthread_cond_init(&cond, nil) }
    func signal() { pthread_mutex_lock(&mutex); count += 1; pthread_cond_signal(&cond); pthread_mutex_unlock(&mutex) }
    func wait() {
        pthread_mutex_lock(&mutex)
        while count == 0 { pthread_cond_wait(&cond, &mutex) }
        count -= 1
        pthread_mutex_unlock(&mutex)
    }
}

/// A value shared with a helper thread (joined through a semaphore before it is read).
final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
