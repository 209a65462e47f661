// What the session does with each checked frame from the peer. Every rule
// that the peer can break throws MuxError.violation: the loop then tears the
// session down (FrameReader already checked the header and payload shapes;
// these are the checks that need the session's state).
#if canImport(Glibc)
import Glibc
#endif

extension MuxSession {
    /// The peer's ids: odd for the guest, even for the host.
    func isPeerID(_ id: UInt32) -> Bool { (id & 1 == 1) == (role == .host) }

    func handle(_ f: Frame) throws(MuxError) {
        let h = f.header
        if trace { log("mux \(role) << \(h.type) stream \(h.stream) len \(h.length) aux \(h.aux)") }
        if h.type == .hello { return hello(f) }
        guard peerNonce != nil else { throw .violation("\(h.type) before HELLO") }
        switch h.type {
        case .hello: return
        case .open: try open(h)
        case .accept, .refuse: try answer(h)
        case .data: try data(f)
        case .credit:
            let s = try live(h)
            if s.sentClose { return }   // in flight when we closed
            guard s.sendCredit + Int(h.aux) <= MuxProtocol.initialWindow else {
                throw .violation("stream \(h.stream): credit beyond the window (\(s.sendCredit) + \(h.aux))")
            }
            s.sendCredit += Int(h.aux)
        case .eof:
            let s = try live(h)
            guard !s.peerEOF else { throw .violation("stream \(h.stream): EOF twice") }
            s.peerEOF = true
            if s.local >= 0 { deliver(s) }
        case .close:
            let s = try live(h)
            s.peerClosed = true
            if !s.sentClose { s.sentClose = true; emit(.close, s.id) }
            // Bytes already received still reach the local reader.
            if s.toLocalBytes == 0 { s.closeLocal() }
        }
    }

    /// A stream the peer may still talk about.
    func live(_ h: FrameHeader) throws(MuxError) -> MuxStream {
        guard let s = streams[h.stream], !s.peerClosed else { throw .violation("\(h.type) for unknown stream \(h.stream)") }
        guard !s.opening else { throw .violation("\(h.type) for stream \(h.stream) before it was accepted") }
        return s
    }

    func hello(_ f: Frame) {
        let (nonce, echo) = f.helloFields
        if nonce != peerNonce {
            // A new peer session: nothing of the old one survives, and
            // frames of old streams still queued must not reach it.
            if peerNonce != nil || !streams.isEmpty {
                log("mux \(transport.label): the other side started a new session; closing \(streams.count) stream(s)")
            }
            resetStreams("the other side started a new session")
            dropOutput(keepPartial: true)
            peerNonce = nonce
            monitor.locked { statsShared.sessions += 1; syncedShared = true; monitor.broadcast() }
        }
        if echo != myNonce { emitFrame(Frame.hello(nonce: myNonce, echo: nonce).encoded) }
        takeInbox()
    }

    func open(_ h: FrameHeader) throws(MuxError) {
        guard role == .host else { throw .violation("OPEN from the host (guests do not listen)") }
        guard isPeerID(h.stream), h.stream > lastPeerID else { throw .violation("OPEN with stream id \(h.stream) (after \(lastPeerID))") }
        lastPeerID = h.stream
        let l: MuxListener? = streams.count >= limits.maxStreams ? nil : monitor.locked {
            guard let l = listeners[h.aux], l.stateLocked == .waiting else { return nil }
            listeners[h.aux] = nil
            l.connectLocked()
            monitor.broadcast()
            return l
        }
        guard let l else { emit(.refuse, h.stream); return }
        streams[h.stream] = MuxStream(id: h.stream, local: l.muxEnd, opening: false)
        emit(.accept, h.stream)
        publishCount()
    }

    func answer(_ h: FrameHeader) throws(MuxError) {
        guard let s = streams[h.stream], s.opening else { throw .violation("\(h.type) for stream \(h.stream), which is not dialling") }
        if h.type == .accept {
            s.opening = false
            settle(h.stream, .accepted)
        } else {
            streams[h.stream] = nil
            settle(h.stream, .refused)
            s.closeLocal()
            publishCount()
        }
    }

    func data(_ f: Frame) throws(MuxError) {
        let h = f.header
        let s = try live(h)
        guard !s.peerEOF else { throw .violation("DATA for stream \(h.stream) after its EOF") }
        let (ids, start) = f.passedStreams
        let count = f.payload.count - start
        guard s.recvOutstanding + count <= MuxProtocol.initialWindow else {
            throw .violation("stream \(h.stream): \(s.recvOutstanding + count) bytes beyond the window of \(MuxProtocol.initialWindow)")
        }
        s.recvOutstanding += count
        var ends: [Int32] = []
        if !ids.isEmpty {
            guard role == .guest else { throw .violation("the guest passed descriptors") }
            guard streams.count + ids.count <= limits.maxStreams else { throw .violation("more than \(limits.maxStreams) streams") }
            for id in ids {
                guard isPeerID(id), id > lastPeerID else { throw .violation("passed stream id \(id) (after \(lastPeerID))") }
                lastPeerID = id
                let pair: (Int32, Int32)
                do { pair = try LocalSocket.pair() } catch {
                    // Out of descriptors here: the stream is refused by closing it.
                    log("mux \(transport.label): \(error); a passed stream is closed")
                    let t = MuxStream(id: id, local: -1, opening: false)
                    t.sentClose = true
                    streams[id] = t
                    emit(.close, id)
                    continue
                }
                LocalSocket.setNonBlocking(pair.1)
                streams[id] = MuxStream(id: id, local: pair.1, opening: false)
                ends.append(pair.0)
            }
            publishCount()
        }
        guard s.local >= 0, !s.localReaderGone else {
            // Our user is gone (CLOSE is on its way) or reads no more: the
            // bytes are dropped; while the stream lives they are credited
            // back, so the peer is not held up.
            for e in ends { close(e) }
            if s.local >= 0 { consumed(s, count) }
            return
        }
        let bytes = Array(f.payload[start...])
        if ends.isEmpty {
            s.toLocal.append(MuxStream.Chunk(bytes: bytes))
        } else {
            if bytes.count > 1 { s.toLocal.append(MuxStream.Chunk(bytes: Array(bytes.dropLast()))) }
            s.toLocal.append(MuxStream.Chunk(bytes: [bytes[bytes.count - 1]], fds: ends))
        }
        s.toLocalBytes += bytes.count
        deliver(s)
    }
}
