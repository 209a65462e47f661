import XCTest
@testable import GuiProtocol

/// The GUI protocol's fuzz target: seeded random and mutated streams (same on
/// every run) go through the reader and validators. Nothing traps, and every
/// admitted message keeps the promises DomainMessage makes.
final class FuzzTests: XCTestCase {
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var v = state
            v = (v ^ (v >> 30)) &* 0xBF58_476D_1CE4_E5B9
            v = (v ^ (v >> 27)) &* 0x94D0_49BB_1331_11EB
            return v ^ (v >> 31)
        }
    }

    /// A plausible session: windows created, configured, titled, damaged.
    func validSession(_ rng: inout SeededGenerator) -> [UInt8] {
        var out = GuiEncode.hello()
        for _ in 0..<Int(rng.next() % 12) {
            let w = UInt32(rng.next() % 6 + 1)
            let r = GuiRect(x: Int32(Int(rng.next() % 60) - 30), y: Int32(Int(rng.next() % 60) - 30),
                            width: UInt32(rng.next() % 9 + 1), height: UInt32(rng.next() % 9 + 1))
            switch rng.next() % 8 {
            case 0: out += GuiEncode.create(window: w, r, overrideRedirect: rng.next() % 2 == 0)
            case 1: out += GuiEncode.configure(window: w, r)
            case 2: out += GuiEncode.title(window: w, "[vault] \u{202E}\(rng.next())")
            case 3: out += GuiEncode.damage(window: w, r, pixels: [UInt8](repeating: 0x7f, count: Int(r.width * r.height * 4)))
            case 4: out += GuiEncode.map(window: w, overrideRedirect: true)
            case 5: out += GuiEncode.windowClass(window: w, resClass: "C", resName: "n")
            case 6: out += GuiEncode.clipboardData([UInt8](repeating: 1, count: Int(rng.next() % 100)))
            default: out += GuiEncode.destroy(window: w)
            }
        }
        return out
    }

    func mutate(_ bytes: inout [UInt8], _ rng: inout SeededGenerator) {
        guard !bytes.isEmpty else { return }
        for _ in 0..<Int(rng.next() % 4) {
            let i = Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 4 {
            case 0: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
            case 1: bytes[i] = [0, 0xff, 0x7f, 0x80][Int(rng.next() % 4)]
            case 2: bytes.removeSubrange(i..<min(bytes.count, i + Int(rng.next() % 8)))
            default: bytes.insert(contentsOf: [UInt8](repeating: 0xff, count: Int(rng.next() % 5)), at: i)
            }
        }
    }

    func testSeededStreamsNeverTrapAndAdmittedMessagesKeepTheirPromises() {
        var rng = SeededGenerator(state: 0x6775_6931)
        var limits = GuiLimits(); limits.maxWindows = 4
        var admitted = 0, refused = 0
        for round in 0..<4000 {
            var bytes: [UInt8]
            if round % 10 == 0 {
                bytes = (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                bytes = validSession(&rng)
                mutate(&bytes, &rng)
            }
            var validator = GuiValidator(limits: limits), reader = GuiStreamReader()
            var offset = 0
            do throws(GuiProtocolError) {
                while offset < bytes.count {   // arbitrary chunking, as a socket delivers
                    let n = min(bytes.count - offset, Int(rng.next() % 40) + 1)
                    reader.feed(bytes[offset..<(offset + n)]); offset += n
                    while let m = try reader.next(&validator) { admitted += 1; check(m, validator, limits) }
                }
            } catch { refused += 1; XCTAssertFalse(error.description.isEmpty) }
            XCTAssertLessThanOrEqual(validator.windows.count, limits.maxWindows)
            XCTAssertEqual(validator.pixelBytes, validator.windows.values.reduce(0) { $0 + Int($1.width) * Int($1.height) * 4 })
            XCTAssertLessThanOrEqual(validator.pixelBytes, limits.maxPixelBytes)
            XCTAssertLessThanOrEqual(reader.buffered, GuiHeader.size + 16 + limits.maxDamageBytes + bytes.count)
        }
        XCTAssertGreaterThan(admitted, 1000, "the generator must reach past the header checks")
        XCTAssertGreaterThan(refused, 100, "and produce malformed input too")
    }

    func check(_ m: DomainMessage, _ v: GuiValidator, _ limits: GuiLimits) {
        switch m {
        case .create(let w, let r, _, _), .configure(let w, let r, _):
            XCTAssertNotNil(v.windows[w])
            XCTAssert((1...limits.maxWindowWidth).contains(r.width) && (1...limits.maxWindowHeight).contains(r.height))
            XCTAssert(Int64(r.x).magnitude <= UInt64(limits.maxWindowWidth) && Int64(r.y).magnitude <= UInt64(limits.maxWindowHeight))
        case .damage(let w, let r, let pixels):
            guard let win = v.windows[w] else { return XCTFail("damage admitted for an unknown window") }
            XCTAssert(r.x >= 0 && r.y >= 0 && Int64(r.x) + Int64(r.width) <= Int64(win.width) && Int64(r.y) + Int64(r.height) <= Int64(win.height))
            XCTAssertEqual(pixels.count, Int(r.width * r.height * 4))
        case .title(_, let text):
            XCTAssertLessThanOrEqual(text.utf8.count, limits.maxTitleBytes)
            XCTAssertFalse(text.unicodeScalars.contains { !GuiText.isShown($0) })
        case .clipboardData(let bytes): XCTAssertLessThanOrEqual(bytes.count, limits.maxClipboardBytes)
        default: break
        }
    }
}
