// The loaded policy: an immutable rule list plus its compiled index. Safe to share between
// threads; a reload builds a new Policy and swaps the reference.

/// A qrexec policy (Qubes format v5 with the R4.3 additions).
///
/// Fail closed: a policy that does not load is replaced by `denyAll` (or
/// `loadOrDenyAll(directories:)`), which refuses every call and says why.
public final class Policy: Sendable {
    /// All rules, in evaluation order.
    public let rules: [PolicyRule]
    /// Set when this policy stands in for one that failed to load.
    public let loadError: PolicyLoadError?
    let index: PolicyIndex

    init(rules: [PolicyRule], loadError: PolicyLoadError? = nil) {
        self.rules = rules
        self.loadError = loadError
        self.index = PolicyIndex(rules: rules)
    }

    public var ruleCount: Int { rules.count }

    /// Loads every `*.policy` file of `directories`, merged by basename (the first directory
    /// wins a clash), in code-point order of the basename. Each directory must exist.
    public static func load(directories: [String]) throws(PolicyLoadError) -> Policy {
        Policy(rules: try PolicyLoader.load(directories: directories))
    }

    /// Parses one policy text as if it were the file `path` (used in messages; `!include`
    /// resolves against its directory).
    public static func parse(_ text: String, path: String) throws(PolicyLoadError) -> Policy {
        Policy(rules: try PolicyLoader.parse(text: text, path: path))
    }

    /// The policy that denies every call: what a failed load becomes.
    public static let denyAll = Policy(rules: [])

    /// A policy that denies every call because loading failed with `error`.
    public static func failed(_ error: PolicyLoadError) -> Policy {
        Policy(rules: [], loadError: error)
    }

    /// Loads, or on any error returns a deny-everything policy carrying the error.
    public static func loadOrDenyAll(directories: [String]) -> Policy {
        do {
            return try load(directories: directories)
        } catch {
            return failed(error)
        }
    }
}
