// Every refusal of the domain store and volume layer, with the Qubes
// exception name the Admin API sends on the wire (`2\0<qubesType>\0\0<message>\0`).

public enum DomainError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No domain with this name.
    case vmNotFound(String)
    /// The property does not exist on this domain's class (domain nil: a global property).
    case noSuchProperty(domain: String?, property: String)
    /// A bad value that is not about one property (names, tags, feature keys...).
    case value(String)
    /// A value refused for one property.
    case propertyValue(domain: String?, property: String, value: String, reason: String)
    /// The property cannot be set or reset (read-only, or required without default).
    case propertyAccess(domain: String?, property: String, reason: String)
    /// The domain is used by others (template with children, netvm of others...).
    case vmInUse(domain: String, reason: String)
    case labelNotFound(String)
    case featureNotFound(domain: String, feature: String)
    case tagNotFound(domain: String, tag: String)
    /// The operation needs a halted domain (volume revert...).
    case notHalted(String)
    /// Refused by rule (created-by-* from a non-admin caller).
    case permissionDenied(String)
    /// An automatic tag (isolation-*) set or removed by hand: a bad value, not
    /// a permission question, so the Qubes tools handle it (a QubesException).
    case automaticTag(String)
    /// A volume or template operation failed (I/O, missing root, bad tarball).
    case storage(String)
    /// The database failed; the change was rolled back.
    case database(SQLiteError)
    /// Anything else, with its message.
    case other(String)

    /// The Qubes exception type name (qubes/exc.py) for the Admin API.
    public var qubesType: String {
        switch self {
        case .vmNotFound: "QubesVMNotFoundError"
        case .noSuchProperty: "QubesNoSuchPropertyError"
        case .value: "QubesValueError"
        case .propertyValue: "QubesPropertyValueError"
        case .propertyAccess: "QubesPropertyAccessError"
        case .vmInUse: "QubesVMInUseError"
        case .labelNotFound: "QubesLabelNotFoundError"
        case .featureNotFound: "QubesFeatureNotFoundError"
        case .tagNotFound: "QubesTagNotFoundError"
        case .notHalted: "QubesVMNotHaltedError"
        case .permissionDenied: "PermissionDenied"
        case .automaticTag: "QubesValueError"
        case .storage: "StoragePoolException"
        case .database, .other: "QubesException"
        }
    }

    /// The human message (what qubesd puts after the traceback field).
    public var message: String {
        switch self {
        case .vmNotFound(let n): "No such domain: '\(n)'"
        case .noSuchProperty(let d, let p):
            d.map { "Invalid property '\(p)' of \($0)" } ?? "Invalid global property '\(p)'"
        case .value(let m): m
        case .propertyValue(let d, let p, let v, let r):
            "\(d.map { "\($0): " } ?? "")invalid value '\(v)' for property '\(p)': \(r)"
        case .propertyAccess(let d, let p, let r):
            "Failed to access '\(d ?? "global").\(p)' property: \(r)"
        case .vmInUse(let d, let r): "Domain '\(d)' is in use: \(r)"
        case .labelNotFound(let l): "Label does not exist: '\(l)'"
        case .featureNotFound(let d, let f): "Feature not set: '\(d).\(f)'"
        case .tagNotFound(let d, let t): "Tag not set for domain \(d): '\(t)'"
        case .notHalted(let d): "Domain is not powered off: '\(d)'"
        case .permissionDenied(let m): m
        case .automaticTag(let t): "tag '\(t)' is maintained from the vmm property and cannot be changed by hand"
        case .storage(let m): m
        case .database(let e): "store: \(e.description)"
        case .other(let m): m
        }
    }

    public var description: String { "\(qubesType): \(message)" }
}
