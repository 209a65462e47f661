// What one committed change did, in commit order: the daemon turns these
// into Admin API events (qubesd event names and keyword arguments).

public struct ChangeRecord: Sendable, Equatable, CustomStringConvertible {
    /// Monotonic over the store's life in this process (starts at 1 on open).
    public let sequence: UInt64
    /// The domain the event is about; nil for global (app-level) events.
    public let domain: String?
    public let kind: Kind

    public enum Kind: Sendable, Equatable {
        case domainAdd(DomainClass)
        case domainDelete(DomainClass)
        /// New and old *effective* values as the Admin API prints them (vm: the name).
        case propertySet(name: String, newValue: String, oldValue: String?)
        case propertyReset(name: String, oldValue: String?)
        case featureSet(key: String, value: String, oldValue: String?)
        case featureDelete(key: String)
        case tagAdd(String)
        case tagDelete(String)
        case labelAdd(String)
        case labelRemove(String)
    }

    /// The qubesd event name (`property-set:memory`, `domain-tag-add:work`...).
    public var eventName: String {
        switch kind {
        case .domainAdd: "domain-add"
        case .domainDelete: "domain-delete"
        case .propertySet(let n, _, _): "property-set:\(n)"
        case .propertyReset(let n, _): "property-reset:\(n)"
        case .featureSet(let k, _, _): "domain-feature-set:\(k)"
        case .featureDelete(let k): "domain-feature-delete:\(k)"
        case .tagAdd(let t): "domain-tag-add:\(t)"
        case .tagDelete(let t): "domain-tag-delete:\(t)"
        case .labelAdd: "label-add"
        case .labelRemove: "label-remove"
        }
    }

    /// The event qubesd fires just before this change, with the same keyword
    /// arguments (`property-pre-set:memory`, `domain-feature-pre-set:gui`...);
    /// nil where qubesd fires none. Sent right before the change's own event:
    /// a change refused is never announced here (qubesd announces some before
    /// a handler refuses them; its tools act on the event after).
    public var preEventName: String? {
        switch kind {
        case .propertySet(let n, _, _): "property-pre-set:\(n)"
        case .propertyReset(let n, _): "property-pre-reset:\(n)"
        case .featureSet(let k, _, _): "domain-feature-pre-set:\(k)"
        case .featureDelete(let k): "domain-feature-pre-delete:\(k)"
        default: nil
        }
    }

    /// The event's keyword arguments in qubesd's order. For domain-add and
    /// domain-delete qubesd fires the event on the app with `vm=<name>`:
    /// `domain` is then the domain and the daemon decides the wire subject.
    public var arguments: [(String, String)] {
        switch kind {
        case .domainAdd, .domainDelete: [("vm", domain ?? "")]
        case .propertySet(let n, let new, let old):
            [("name", n), ("newvalue", new)] + (old.map { [("oldvalue", $0)] } ?? [])
        case .propertyReset(let n, let old): [("name", n)] + (old.map { [("oldvalue", $0)] } ?? [])
        case .featureSet(let k, let v, let old): [("feature", k), ("value", v)] + (old.map { [("oldvalue", $0)] } ?? [])
        case .featureDelete(let k): [("feature", k)]
        case .tagAdd(let t), .tagDelete(let t): [("tag", t)]
        case .labelAdd(let l), .labelRemove(let l): [("label", l)]
        }
    }

    public var description: String {
        "#\(sequence) \(domain ?? "-") \(eventName)" + arguments.map { " \($0.0)=\($0.1)" }.joined()
    }
}

/// A registered observer; pass it to `DomainStore.removeObserver`.
public struct ObserverToken: Hashable, Sendable {
    let id: UInt64
}
