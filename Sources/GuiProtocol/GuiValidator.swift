// One validator per message type from a domain. `admit` checks a header
// (type, direction, session state, length) before any body byte is read;
// `validate` turns the body into a DomainMessage against the domain's
// window table. Nothing else in the GUI reads a domain's bytes.
//
// Length rules (body bytes):
//   hello 8; create 24; destroy 0; map 8; unmap 0; configure 20
//   hints 36 (eight sizes, then a reserved word)
//   title 0...maxTitleBytes; windowClass 1...2*maxClassBytes+1 (class NUL name)
//   damage 16 + width*height*4, at most 16 + maxDamageBytes
//   clipboardData 0...256001 (over the configured limit: refused, not fatal)

public struct GuiValidator: Sendable {
    public let limits: GuiLimits
    /// nil until the domain's hello was admitted.
    public private(set) var minor: UInt32?
    /// The domain's live windows and what the checks need to know of each.
    public private(set) var windows: [UInt32: WindowState] = [:]
    /// Bytes of pixels of all live windows (4 per pixel), bounded by maxPixelBytes.
    public private(set) var pixelBytes = 0

    public struct WindowState: Equatable, Sendable {
        public var width: UInt32, height: UInt32
        public var overrideRedirect: Bool
    }

    public init(limits: GuiLimits = GuiLimits()) { self.limits = limits }

    /// The body length to read for this header, or why the stream must close.
    public func admit(_ untrusted: GuiHeader) throws(GuiProtocolError) -> Int {
        guard let type = GuiMessageType(rawValue: untrusted.rawType) else {
            throw GuiProtocolError(.unknownType, window: untrusted.window, "type \(untrusted.rawType)")
        }
        guard type.fromDomain else { throw GuiProtocolError(.wrongDirection, window: untrusted.window, "\(type) is sent by the host only") }
        if minor == nil, type != .hello { throw GuiProtocolError(.helloExpected, "got \(type)") }
        if minor != nil, type == .hello { throw GuiProtocolError(.duplicateHello, "a session has one hello") }
        let len = Int(untrusted.untrustedLength)
        func exact(_ n: Int) throws(GuiProtocolError) -> Int {
            guard len == n else { throw GuiProtocolError(.badLength, window: untrusted.window, "\(type) carries \(n) bytes, not \(len)") }
            return n
        }
        func atMost(_ lo: Int, _ hi: Int) throws(GuiProtocolError) -> Int {
            guard len >= lo, len <= hi else {
                throw GuiProtocolError(.badLength, window: untrusted.window, "\(type) carries \(lo)...\(hi) bytes, not \(len)")
            }
            return len
        }
        switch type {
        case .hello, .map: return try exact(8)
        case .create: return try exact(24)
        case .destroy, .unmap: return try exact(0)
        case .configure: return try exact(20)
        case .hints: return try exact(36)
        case .title: return try atMost(0, limits.maxTitleBytes)
        case .windowClass: return try atMost(1, 2 * limits.maxClassBytes + 1)
        case .damage: return try atMost(16, 16 + limits.maxDamageBytes)
        case .clipboardData: return try atMost(0, GuiLimits.clipboardHardMax)
        default: throw GuiProtocolError(.wrongDirection, window: untrusted.window, "\(type) is sent by the host only")
        }
    }

    /// Validates a body `admit` sized, and updates the window table.
    public mutating func validate(_ header: GuiHeader, body untrusted: ArraySlice<UInt8>) throws(GuiProtocolError) -> DomainMessage {
        let expected = try admit(header)
        guard untrusted.count == expected else { throw GuiProtocolError(.badLength, window: header.window, "body of \(untrusted.count) bytes, header said \(expected)") }
        let type = GuiMessageType(rawValue: header.rawType)!   // admit checked it
        let w = header.window
        var r = LittleEndianReader(untrusted)
        switch type {
        case .hello: return try validateHello(&r)
        case .create: return try validateCreate(w, &r)
        case .destroy:
            try known(w)
            if let old = windows.removeValue(forKey: w) { pixelBytes -= Self.bytes(old.width, old.height) }
            return .destroy(window: w)
        case .map: return try validateMap(w, &r)
        case .unmap: try known(w); return .unmap(window: w)
        case .configure: return try validateConfigure(w, &r)
        case .title: try known(w); return .title(window: w, text: GuiText.printable(untrusted, maxBytes: limits.maxTitleBytes))
        case .windowClass: return try validateClass(w, untrusted)
        case .hints: return try validateHints(w, &r)
        case .damage: return try validateDamage(w, &r)
        case .clipboardData:
            guard w == 0 else { throw GuiProtocolError(.badValue, window: w, "clipboard data names no window") }
            return untrusted.count > limits.maxClipboardBytes ? .clipboardTooLarge(size: untrusted.count) : .clipboardData(bytes: Array(untrusted))
        default: throw GuiProtocolError(.wrongDirection, window: w, "\(type) is sent by the host only")
        }
    }

    // MARK: one validator per type

    private mutating func validateHello(_ r: inout LittleEndianReader) throws(GuiProtocolError) -> DomainMessage {
        let major = r.u32(), theirMinor = r.u32()
        guard major == GuiVersion.major else {
            throw GuiProtocolError(.versionMismatch, "domain speaks \(major).\(theirMinor), this daemon \(GuiVersion.major).\(GuiVersion.minor)")
        }
        let agreed = min(theirMinor, GuiVersion.minor)
        minor = agreed
        return .hello(minor: agreed)
    }

    private mutating func validateCreate(_ w: UInt32, _ r: inout LittleEndianReader) throws(GuiProtocolError) -> DomainMessage {
        guard w != 0 else { throw GuiProtocolError(.badValue, "window id 0 is reserved") }
        guard windows[w] == nil else { throw GuiProtocolError(.windowExists, window: w, "created twice") }
        guard windows.count < limits.maxWindows else {
            throw GuiProtocolError(.tooManyWindows, window: w, "a domain has at most \(limits.maxWindows) windows")
        }
        let rect = try checkedRect(w, &r)
        let parent = r.u32()
        let overrideRedirect = try flag(w, r.u32(), "override_redirect")
        guard parent == 0 || windows[parent] != nil else { throw GuiProtocolError(.unknownWindow, window: w, "parent \(parent) does not exist") }
        try reservePixels(w, adding: rect, replacing: nil)
        windows[w] = WindowState(width: rect.width, height: rect.height, overrideRedirect: overrideRedirect)
        return .create(window: w, rect: rect, parent: parent, overrideRedirect: overrideRedirect)
    }

    private func validateMap(_ w: UInt32, _ r: inout LittleEndianReader) throws(GuiProtocolError) -> DomainMessage {
        try known(w)
        let transientFor = r.u32()
        let overrideRedirect = try flag(w, r.u32(), "override_redirect")
        guard transientFor == 0 || windows[transientFor] != nil else {
            throw GuiProtocolError(.unknownWindow, window: w, "transient for \(transientFor), which does not exist")
        }
        return .map(window: w, transientFor: transientFor, overrideRedirect: overrideRedirect)
    }

    private mutating func validateConfigure(_ w: UInt32, _ r: inout LittleEndianReader) throws(GuiProtocolError) -> DomainMessage {
        try known(w)
        let rect = try checkedRect(w, &r)
        let overrideRedirect = try flag(w, r.u32(), "override_redirect")
        try reservePixels(w, adding: rect, replacing: windows[w])
        windows[w] = WindowState(width: rect.width, height: rect.height, overrideRedirect: overrideRedirect)
        return .configure(window: w, rect: rect, overrideRedirect: overrideRedirect)
    }

    private func validateClass(_ w: UInt32, _ untrusted: ArraySlice<UInt8>) throws(GuiProtocolError) -> DomainMessage {
        try known(w)
        guard let nul = untrusted.firstIndex(of: 0) else { throw GuiProtocolError(.badValue, window: w, "class and name are separated by a NUL") }
        let cls = untrusted[untrusted.startIndex..<nul], name = untrusted[(nul + 1)...]
        guard cls.count <= limits.maxClassBytes, name.count <= limits.maxClassBytes else {
            throw GuiProtocolError(.badLength, window: w, "class and name are at most \(limits.maxClassBytes) bytes each")
        }
        return .windowClass(window: w, resClass: GuiText.classString(cls), resName: GuiText.classString(name))
    }

    private func validateHints(_ w: UInt32, _ r: inout LittleEndianReader) throws(GuiProtocolError) -> DomainMessage {
        try known(w)
        let mw = limits.maxWindowWidth, mh = limits.maxWindowHeight
        // Hints only advise the window manager: out-of-range values are clamped, not fatal.
        let h = GuiSizeHints(minWidth: min(r.u32(), mw), minHeight: min(r.u32(), mh), maxWidth: min(r.u32(), mw),
                             maxHeight: min(r.u32(), mh), widthIncrement: min(r.u32(), mw), heightIncrement: min(r.u32(), mh),
                             baseWidth: min(r.u32(), mw), baseHeight: min(r.u32(), mh))
        return .hints(window: w, hints: h)
    }

    private func validateDamage(_ w: UInt32, _ r: inout LittleEndianReader) throws(GuiProtocolError) -> DomainMessage {
        guard let win = windows[w] else { throw GuiProtocolError(.unknownWindow, window: w, "damage for a window never created") }
        let x = r.i32(), y = r.i32(), width = r.u32(), height = r.u32()
        guard width <= limits.maxWindowWidth, height <= limits.maxWindowHeight else {
            throw GuiProtocolError(.badValue, window: w, "damage of \(width)x\(height) exceeds \(limits.maxWindowWidth)x\(limits.maxWindowHeight)")
        }
        let pixels = r.rest
        // Both factors are at most 16384, so the product fits easily in Int.
        guard pixels.count == Int(width) * Int(height) * 4 else {
            throw GuiProtocolError(.badLength, window: w, "damage of \(width)x\(height) carries \(Int(width) * Int(height) * 4) pixel bytes, not \(pixels.count)")
        }
        // Clip to the window, in Int64 so no coordinate can overflow.
        let x0 = max(Int64(x), 0), y0 = max(Int64(y), 0)
        let x1 = min(Int64(x) + Int64(width), Int64(win.width)), y1 = min(Int64(y) + Int64(height), Int64(win.height))
        guard x1 > x0, y1 > y0 else { return .damageOutside(window: w) }
        let cw = Int(x1 - x0), ch = Int(y1 - y0)
        let srcX = Int(x0 - Int64(x)), srcY = Int(y0 - Int64(y)), stride = Int(width) * 4
        var out: [UInt8]
        if cw == Int(width), ch == Int(height) { out = Array(pixels) } else {
            out = []
            out.reserveCapacity(cw * ch * 4)
            for row in 0..<ch {
                let start = pixels.startIndex + (srcY + row) * stride + srcX * 4
                out.append(contentsOf: pixels[start..<(start + cw * 4)])
            }
        }
        return .damage(window: w, rect: GuiRect(x: Int32(x0), y: Int32(y0), width: UInt32(cw), height: UInt32(ch)), pixels: out)
    }

    // MARK: shared checks

    private static func bytes(_ width: UInt32, _ height: UInt32) -> Int { Int(width) * Int(height) * 4 }

    /// Counts a window's new size against the domain's pixel budget.
    private mutating func reservePixels(_ w: UInt32, adding r: GuiRect, replacing old: WindowState?) throws(GuiProtocolError) {
        let total = pixelBytes - (old.map { Self.bytes($0.width, $0.height) } ?? 0) + Self.bytes(r.width, r.height)
        guard total <= limits.maxPixelBytes else {
            throw GuiProtocolError(.tooManyPixels, window: w, "\(r.width)x\(r.height) would bring the domain's windows to \(total) bytes of pixels, over \(limits.maxPixelBytes)")
        }
        pixelBytes = total
    }

    private func known(_ w: UInt32) throws(GuiProtocolError) {
        guard windows[w] != nil else { throw GuiProtocolError(.unknownWindow, window: w, "never created, or destroyed") }
    }

    private func flag(_ w: UInt32, _ v: UInt32, _ name: String) throws(GuiProtocolError) -> Bool {
        guard v <= 1 else { throw GuiProtocolError(.badValue, window: w, "\(name) is 0 or 1, not \(v)") }
        return v == 1
    }

    /// x, y, width, height: sizes 1...max, positions within +-max (so X11's
    /// 16-bit coordinates hold every admitted value).
    private func checkedRect(_ w: UInt32, _ r: inout LittleEndianReader) throws(GuiProtocolError) -> GuiRect {
        let x = r.i32(), y = r.i32(), width = r.u32(), height = r.u32()
        let mw = limits.maxWindowWidth, mh = limits.maxWindowHeight
        guard (1...mw).contains(width), (1...mh).contains(height) else {
            throw GuiProtocolError(.badValue, window: w, "size \(width)x\(height) outside 1x1...\(mw)x\(mh)")
        }
        guard Int64(x).magnitude <= UInt64(mw), Int64(y).magnitude <= UInt64(mh) else {
            throw GuiProtocolError(.badValue, window: w, "position \(x),\(y) outside +-\(mw),+-\(mh)")
        }
        return GuiRect(x: x, y: y, width: width, height: height)
    }
}
