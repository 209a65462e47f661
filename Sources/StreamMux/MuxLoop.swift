// The session's poll loop: the transport, the wake socket, and every
// stream's local socket. Only this thread touches streams and the transport.
#if canImport(Glibc)
import Glibc
#endif

extension MuxSession {
    func loop() {
        var scratch = [UInt8](repeating: 0, count: 256 * 1024)
        while !monitor.locked({ stopped }) {
            if tfd < 0 && !connectTransport() { idle(untilNs: nextConnectNs); continue }
            takeInbox()
            var pfds: [pollfd] = [pollfd(fd: wake.r, events: Int16(POLLIN), revents: 0)]
            var tevents = Int16(POLLIN)
            if outBytes > 0 || (!announced && transport.hangupIsPeerAbsence) { tevents |= Int16(POLLOUT) }
            pfds.append(pollfd(fd: tfd, events: tevents, revents: 0))
            var order: [MuxStream] = []
            for s in streams.values where s.local >= 0 {
                var ev: Int16 = 0
                if canRead(s) { ev |= Int16(POLLIN) }
                if s.toLocalBytes > 0 { ev |= Int16(POLLOUT) }
                // Hang-ups are reported whatever we ask for: a stream that
                // may not read now (no credit) must not be polled, or a
                // closed local socket with unread bytes would spin.
                if ev == 0 && !(s.localEOF && s.toLocalBytes == 0) { continue }
                pfds.append(pollfd(fd: s.local, events: ev, revents: 0))
                order.append(s)
            }
            // A guest port whose host end is absent reports POLLHUP until it
            // comes back: look again after a pause instead of spinning.
            let timeout: Int32 = !announced && transport.hangupIsPeerAbsence ? Int32(backoffNs / 1_000_000) : -1
            let rc = poll(&pfds, nfds_t(pfds.count), timeout)
            if rc < 0 { if errno == EINTR { continue }; log("mux \(transport.label): poll: errno \(errno)"); break }
            if pfds[0].revents != 0 { drainWake() }
            if !serviceTransport(pfds[1].revents, &scratch) { continue }
            for (i, s) in order.enumerated() where pfds[i + 2].revents != 0 {
                serviceLocal(s, pfds[i + 2].revents, &scratch)
                if tfd < 0 { break }
            }
            reap()
            flushTransport()
        }
        shutdownAll()
    }

    // MARK: transport

    /// Tries to connect the transport; true when there is one.
    func connectTransport() -> Bool {
        let now = MuxMonitor.nowNs()
        let kick = monitor.locked { defer { kicked = false }; return kicked }
        guard now >= nextConnectNs || kick else { return false }
        guard let fd = transport.connect() else {
            if !transport.reconnects { monitor.locked { stopped = true }; return false }
            nextConnectNs = now + backoffNs
            backoffNs = min(backoffNs * 2, limits.maxBackoffNs)
            return false
        }
        LocalSocket.setNonBlocking(fd)
        tfd = fd
        announced = false
        reader.resync()
        if !transport.hangupIsPeerAbsence { announce() }
        return true
    }

    /// Our HELLO with a fresh nonce: the peer resets its streams.
    func announce() {
        announced = true
        backoffNs = 1_000_000
        myNonce = UInt64.random(in: 1...UInt64.max)
        emitFrame(Frame.hello(nonce: myNonce, echo: peerNonce ?? 0).encoded)
        flushTransport()
    }

    /// Sleeps on the wake socket until `untilNs` (or a poke).
    func idle(untilNs: Int64) {
        if monitor.locked({ stopped }) { return }
        let ms = max(1, (untilNs - MuxMonitor.nowNs()) / 1_000_000)
        var p = pollfd(fd: wake.r, events: Int16(POLLIN), revents: 0)
        if poll(&p, 1, Int32(min(ms, 1000))) > 0 { drainWake() }
        takeInbox()
    }

    func drainWake() {
        var b = [UInt8](repeating: 0, count: 64)
        while Glibc.read(wake.r, &b, b.count) > 0 {}
    }

    /// False when the transport is gone (the loop starts over).
    func serviceTransport(_ rev: Int16, _ scratch: inout [UInt8]) -> Bool {
        if !announced && transport.hangupIsPeerAbsence {
            if rev & Int16(POLLHUP) != 0 || rev == 0 {
                backoffNs = min(max(backoffNs * 2, 10_000_000), 200_000_000)
                return false
            }
            announce()
        }
        if rev & Int16(POLLIN) != 0 {
            // Bounded per wake-up so local sockets get their turn.
            for _ in 0..<8 {
                let n = scratch.withUnsafeMutableBytes { Glibc.read(tfd, $0.baseAddress!, $0.count) }
                if n > 0 {
                    scratch.withUnsafeBytes { reader.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    do {
                        while tfd >= 0, let f = try reader.next() { try handle(f) }
                    } catch {
                        violation("\(error)")
                        return false
                    }
                    if tfd < 0 { return false }
                    if n < scratch.count { break }
                    continue
                }
                if n < 0 && (errno == EAGAIN || errno == EINTR) { break }
                transportLost(n == 0 ? "end of stream" : "read: errno \(errno)")
                return false
            }
        } else if rev & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
            transportLost("hang-up")
            return false
        }
        if rev & Int16(POLLOUT) != 0 { flushTransport() }
        return tfd >= 0
    }

    func transportLost(_ why: String) {
        if transport.hangupIsPeerAbsence {
            // The host end went away (odysseyd stopped or restarts): keep the
            // port, drop the session, wait for the host to come back.
            if announced { log("mux \(transport.label): the other side went away (\(why)); waiting for it") }
            resetStreams("the other side went away")
            dropOutput(keepPartial: false)
            reader.resync()
            peerNonce = nil
            announced = false
            backoffNs = 10_000_000
            return
        }
        closeTransport("transport \(why)")
        if !transport.reconnects { monitor.locked { stopped = true } }
    }

    func closeTransport(_ why: String) {
        if tfd >= 0 { close(tfd); tfd = -1 }
        resetStreams(why)
        dropOutput(keepPartial: false)
        peerNonce = nil
        announced = false
    }

    /// Tears the session down after the peer broke the protocol.
    func violation(_ why: String) {
        log("mux \(transport.label): \(why); closing the session")
        monitor.locked { statsShared.violations += 1; statsShared.lastViolation = why }
        closeTransport("protocol violation")
        nextConnectNs = MuxMonitor.nowNs() + limits.violationPauseNs
        if !transport.reconnects { monitor.locked { stopped = true } }
    }

    func emitFrame(_ bytes: [UInt8]) {
        if trace, let h = bytes.withUnsafeBytes({ FrameReader.parseHeader($0) }) {
            log("mux \(role) >> \(h.type) stream \(h.stream) len \(h.length) aux \(h.aux)")
        }
        outq.append(bytes)
        outBytes += bytes.count
    }

    func emit(_ t: FrameType, _ stream: UInt32, aux: UInt32 = 0) {
        var b: [UInt8] = []
        b.reserveCapacity(FrameHeader.size)
        FrameHeader(t, stream: stream, aux: aux).write(into: &b)
        emitFrame(b)
    }

    /// Drops queued frames (their streams are gone); a frame already partly
    /// written is kept whole, or the peer would lose the frame boundary.
    func dropOutput(keepPartial: Bool) {
        if keepPartial && outHead > 0 && !outq.isEmpty {
            let head = outq[0]
            outq = [head]
            outBytes = head.count - outHead
        } else {
            outq = []; outHead = 0; outBytes = 0
        }
    }

    func flushTransport() {
        while tfd >= 0 && outBytes > 0 {
            var iov: [iovec] = []
            var keep: [[UInt8]] = []
            for (i, f) in outq.prefix(64).enumerated() {
                keep.append(f)
                let off = i == 0 ? outHead : 0
                f.withUnsafeBytes { iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress! + off), iov_len: $0.count - off)) }
            }
            // The arrays in `keep` stay alive (and unmoved) across writev.
            let n = withExtendedLifetime(keep) { writeOut(&iov) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { return }
                transportLost("write: errno \(errno)")
                return
            }
            var left = n
            outBytes -= n
            while left > 0 {
                let rest = outq[0].count - outHead
                if left >= rest { left -= rest; outq.removeFirst(); outHead = 0 } else { outHead += left; left = 0 }
            }
        }
    }

    /// sendmsg with MSG_NOSIGNAL (a peer that went away must not kill the
    /// process with SIGPIPE); writev on a port, which is not a socket.
    func writeOut(_ iov: inout [iovec]) -> Int {
        if !transportIsNotSocket {
            var msg = msghdr()
            let n = iov.withUnsafeMutableBufferPointer { b -> Int in
                msg.msg_iov = b.baseAddress
                msg.msg_iovlen = b.count
                return sendmsg(tfd, &msg, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n >= 0 || errno != ENOTSOCK { return n }
            transportIsNotSocket = true
        }
        return writev(tfd, iov, Int32(iov.count))
    }

    // MARK: streams

    func canRead(_ s: MuxStream) -> Bool {
        !s.opening && !s.localEOF && !s.sentClose && s.sendCredit > 0 && outBytes < limits.transportHighWater && announced
    }

    /// The loop picks up new dials; they go out once the session is synced.
    func takeInbox() {
        let new: [(UInt32, PendingDial)] = monitor.locked { defer { inbox = [] }; return inbox }
        unsentDials += new
        guard peerNonce != nil, tfd >= 0, !unsentDials.isEmpty else { return }
        let batch = unsentDials
        unsentDials = []
        for (id, d) in batch {
            let live: Bool = monitor.locked { dials[id] === d }
            guard live else { close(d.muxEnd); continue }
            if streams.count >= limits.maxStreams {
                settle(id, .reset("too many streams (\(limits.maxStreams))"))
                close(d.muxEnd)
                continue
            }
            streams[id] = MuxStream(id: id, local: d.muxEnd, opening: true)
            emit(.open, id, aux: d.port)
        }
        publishCount()
        flushTransport()
    }

    func settle(_ id: UInt32, _ r: PendingDial.Result) {
        monitor.locked {
            if let d = dials.removeValue(forKey: id) { d.result = r; monitor.broadcast() }
        }
    }

    func publishCount() {
        let n = streams.count
        monitor.locked { statsShared.streams = n }
    }

    /// Closes every stream (both sides do the same on a new session).
    func resetStreams(_ why: String) {
        let had = !streams.isEmpty
        for s in streams.values {
            if s.opening { settle(s.id, .reset(why)) }
            s.closeLocal()
        }
        streams = [:]
        lastPeerID = 0
        monitor.locked {
            if had { statsShared.resets += 1 }
            statsShared.streams = 0
            syncedShared = false
        }
    }

    func serviceLocal(_ s: MuxStream, _ rev: Int16, _ scratch: inout [UInt8]) {
        if rev & Int16(POLLOUT) != 0 || (s.toLocalBytes > 0 && rev & Int16(POLLHUP | POLLERR) != 0) { deliver(s) }
        if s.local < 0 { return }
        if rev & Int16(POLLIN) != 0 || (rev & Int16(POLLHUP | POLLERR) != 0 && canRead(s)) { readLocal(s, &scratch) }
        if s.local < 0 { return }
        if rev & Int16(POLLHUP | POLLERR) != 0 && s.localEOF {
            // Our user closed its end (or both directions are done): the stream ends.
            // An error (ECONNRESET: it closed with our bytes unread) while
            // its own bytes wait for credit is not the end yet: readLocal
            // meets the error after reading them.
            abort(s)
        }
    }

    /// The local user is gone: CLOSE (once) and release the socket.
    func abort(_ s: MuxStream) {
        s.closeLocal()
        if !s.sentClose { s.sentClose = true; emit(.close, s.id) }
    }

    func readLocal(_ s: MuxStream, _ scratch: inout [UInt8]) {
        while canRead(s) {
            let max = min(s.sendCredit, MuxProtocol.maxData)
            var fds: [Int32] = []
            let n = scratch.withUnsafeMutableBytes { LocalSocket.receive(s.local, $0.baseAddress!, max, fds: &fds) }
            if n > 0 {
                let ids = adoptPassed(fds)
                scratch.withUnsafeBytes { emitFrame(Frame.data(stream: s.id, bytes: UnsafeRawBufferPointer(rebasing: $0[0..<n]), passing: ids)) }
                s.sendCredit -= n
                if n < max { return }
                continue
            }
            for f in fds { close(f) }
            if n == 0 {
                s.localEOF = true
                emit(.eof, s.id)
                finishIfDone(s)
                return
            }
            if errno == EAGAIN || errno == EINTR { return }
            abort(s)
            return
        }
    }

    /// Descriptors the local user sent: each stream socket becomes a new
    /// stream of ours (host only; the guest never passes descriptors up).
    func adoptPassed(_ fds: [Int32]) -> [UInt32] {
        guard !fds.isEmpty else { return [] }
        var ids: [UInt32] = []
        for f in fds {
            guard role == .host, ids.count < MuxProtocol.maxFDsPerFrame, LocalSocket.isStreamSocket(f),
                  streams.count < limits.maxStreams else {
                log("mux \(transport.label): a passed descriptor that cannot become a stream (not a stream socket, too many, or from the guest side) was closed")
                close(f)
                continue
            }
            let id: UInt32 = monitor.locked { defer { nextLocalID += 2 }; return nextLocalID }
            LocalSocket.setNonBlocking(f)
            streams[id] = MuxStream(id: id, local: f, opening: false)
            ids.append(id)
        }
        publishCount()
        return ids
    }

    /// Writes what the peer sent to the local user, returning credit.
    func deliver(_ s: MuxStream) {
        if s.localReaderGone { finishIfDone(s); return }
        let (n, st) = s.flushToLocal()
        consumed(s, n)
        switch st {
        case .gone: abort(s); return
        case .readerGone: return localReaderGone(s)
        case .blocked: break
        case .drained:
            if s.peerEOF && !s.shutWrDone {
                s.shutWrDone = true
                shutdown(s.local, Int32(SHUT_WR))
            }
            if s.peerClosed { s.closeLocal() }
        }
        finishIfDone(s)
    }

    /// `n` bytes of the peer's left the stream (delivered, or dropped for a
    /// reader that is gone): the peer gets that credit back, a quarter
    /// window at a time.
    func consumed(_ s: MuxStream, _ n: Int) {
        guard n > 0 else { return }
        s.deliveredUncredited += n
        if s.deliveredUncredited >= MuxProtocol.initialWindow / 4 && !s.sentClose && !s.peerClosed {
            emit(.credit, s.id, aux: UInt32(s.deliveredUncredited))
            s.recvOutstanding -= s.deliveredUncredited
            s.deliveredUncredited = 0
        }
    }

    /// Sending to the local user failed with EPIPE: it closed (or shut its
    /// reading side). That is not the end of the stream: whatever it wrote
    /// before closing (a command's exit code is the last thing an agent
    /// session writes) may still be unread in our end, and closing now would
    /// throw it away. So only the peer's bytes are dropped, now and later;
    /// our end is read to EOF as usual, and then the stream closes.
    func localReaderGone(_ s: MuxStream) {
        s.localReaderGone = true
        consumed(s, s.dropToLocal())
        if s.peerClosed { s.closeLocal(); return }   // nobody to send the rest to
        finishIfDone(s)
    }

    /// Our user's bytes were all read (EOF) and the peer's were all
    /// delivered (or have nobody to go to): CLOSE.
    func finishIfDone(_ s: MuxStream) {
        guard s.localEOF, !s.sentClose else { return }
        if s.localReaderGone || (s.peerEOF && s.shutWrDone && s.toLocalBytes == 0) { abort(s) }
    }

    func reap() {
        let done = streams.values.filter(\.finished).map(\.id)
        if done.isEmpty { return }
        for id in done { streams[id] = nil }
        publishCount()
    }

    func shutdownAll() {
        if tfd >= 0 { close(tfd); tfd = -1 }
        for s in streams.values { s.closeLocal() }
        streams = [:]
        let (ls, ds, inb): ([MuxListener], [PendingDial], [(UInt32, PendingDial)]) = monitor.locked {
            let r = (Array(listeners.values), Array(dials.values), inbox + unsentDials)
            for l in listeners.values where l.stateLocked == .waiting { l.abandonLocked() }
            for d in dials.values where d.result == nil { d.result = .reset("the session stopped") }
            listeners = [:]; dials = [:]; inbox = []
            syncedShared = false
            return r
        }
        for l in ls { close(l.muxEnd) }
        _ = ds   // their callers close their ends; sent dials' mux ends were streams
        for (_, d) in inb { close(d.muxEnd) }
        monitor.locked { exited = true; monitor.broadcast() }
    }
}
