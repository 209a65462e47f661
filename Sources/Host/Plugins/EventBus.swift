// Events from plugins (any thread) and from the host, fanned out to
// subscribers. Publishing never blocks on a subscriber: subscribers that do
// slow work must queue it themselves.
import PluginABI
import Synchronization

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

public final class EventBus: Sendable {
    public typealias Subscriber = @Sendable (HostEvent) -> Void
    private struct State { var subscribers: [Int: Subscriber] = [:]; var nextID = 0 }
    private let state = Mutex(State())

    public init() {}

    @discardableResult
    public func subscribe(_ s: @escaping Subscriber) -> Int {
        state.withLock { st in
            st.nextID += 1
            st.subscribers[st.nextID] = s
            return st.nextID
        }
    }

    public func unsubscribe(_ id: Int) {
        state.withLock { $0.subscribers[id] = nil }
    }

    public func publish(_ e: HostEvent) {
        let targets = state.withLock { Array($0.subscribers.values) }
        for t in targets { t(e) }
    }
}
