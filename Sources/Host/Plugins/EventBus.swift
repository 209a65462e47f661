// Events from plugins (any thread) and from the host, fanned out to
// subscribers. Publishing never blocks on a subscriber: subscribers that do
// slow work must queue it themselves.
import Foundation
import PluginABI

public struct HostEvent: Sendable, Equatable {
    public enum Kind: String, Sendable { case lifecycle, completion, custom }
    public var kind: Kind
    public var source: String          // "vmm.libvirt"
    public var domain: String
    public var state: PowerState
    public var seq: UInt64
    public var status: Int32
    public var name: String
    public var message: String

    public init(kind: Kind, source: String, domain: String = "", state: PowerState = .na, seq: UInt64 = 0,
                status: Int32 = 0, name: String = "", message: String = "") {
        self.kind = kind; self.source = source; self.domain = domain; self.state = state
        self.seq = seq; self.status = status; self.name = name; self.message = message
    }
}

public final class EventBus: @unchecked Sendable {
    public typealias Subscriber = @Sendable (HostEvent) -> Void
    private let lock = NSLock()
    private var subscribers: [Int: Subscriber] = [:]
    private var nextID = 0

    public init() {}

    @discardableResult
    public func subscribe(_ s: @escaping Subscriber) -> Int {
        lock.lock(); defer { lock.unlock() }
        nextID += 1
        subscribers[nextID] = s
        return nextID
    }

    public func unsubscribe(_ id: Int) {
        lock.lock(); defer { lock.unlock() }
        subscribers[id] = nil
    }

    public func publish(_ e: HostEvent) {
        lock.lock()
        let targets = Array(subscribers.values)
        lock.unlock()
        for t in targets { t(e) }
    }
}
