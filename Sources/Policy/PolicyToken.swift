// The domain specifications a policy can name, and where each one is allowed.

/// A domain specification as written in a policy column, a `target=` / `default_target=`
/// parameter, or a caller's requested target.
public enum PolicyToken: Hashable, Sendable, CustomStringConvertible {
    /// `*`: any value, including dom0 and the keywords.
    case wildcard
    /// `@anyvm`: any value except dom0.
    case anyVM
    /// `@adminvm`: dom0.
    case adminVM
    /// `@default`: the caller named no target (or one that does not exist).
    case defaultTarget
    /// `@dispvm`: a new disposable from the source's `default_dispvm`.
    case dispVM
    /// A plain domain name; `dom0` and `uuid:UUID` are plain names too.
    case name(String)
    /// `@type:T`
    case type(String)
    /// `@tag:T`
    case tag(String)
    /// `@dispvm:NAME`: a new disposable from template NAME.
    case dispVMTemplate(String)
    /// `@dispvm:@tag:T`: a new disposable from any template tagged T.
    case dispVMTag(String)

    /// The token as written in a policy file.
    public var description: String {
        switch self {
        case .wildcard: return "*"
        case .anyVM: return "@anyvm"
        case .adminVM: return "@adminvm"
        case .defaultTarget: return "@default"
        case .dispVM: return "@dispvm"
        case .name(let name): return name
        case .type(let value): return "@type:" + value
        case .tag(let value): return "@tag:" + value
        case .dispVMTemplate(let value): return "@dispvm:" + value
        case .dispVMTag(let value): return "@dispvm:@tag:" + value
        }
    }
}

/// Where a token appears. Each context accepts a different subset of tokens, and its name is
/// the word the reference uses in "invalid ... token" messages.
enum TokenContext: String {
    case source
    case target
    case redirect
    case intendedTarget = "intendedtarget"

    /// One bit per context, so the tables below test membership without hashing.
    var bit: UInt8 {
        switch self {
        case .source: return 1
        case .target: return 2
        case .redirect: return 4
        case .intendedTarget: return 8
        }
    }
}

/// A token rejected by the grammar; the message is the reference's text, without `PATH:LINE: `.
struct TokenError: Error {
    let message: String
}

extension PolicyToken {
    /// The all-zero UUID names dom0, like `dom0` and `@adminvm`.
    static let adminUUIDName = "uuid:00000000-0000-0000-0000-000000000000"

    /// True for the three spellings of dom0: `dom0`, `@adminvm` and the all-zero UUID.
    static func isDom0Like(_ text: String) -> Bool {
        text == "dom0" || text == "@adminvm" || (text.hasPrefix("uuid:") && PolicyDomain.bareUUID(text) == "00000000-0000-0000-0000-000000000000")
    }

    /// True when this token is a plain name spelling dom0 (`dom0` or the all-zero UUID).
    var isDom0LikeName: Bool {
        if case .name(let name) = self { return PolicyToken.isDom0Like(name) }
        return false
    }

    private struct Keyword {
        let text: String
        let token: PolicyToken
        let contexts: UInt8
    }

    private struct Prefix {
        let text: String
        let make: @Sendable (String) -> PolicyToken
        let contexts: UInt8
    }

    private static let source = TokenContext.source.bit
    private static let target = TokenContext.target.bit
    private static let redirect = TokenContext.redirect.bit
    private static let request = TokenContext.intendedTarget.bit

    // The order matters: it is the order in which the reference tries them, which decides the
    // message for a malformed token (`@dispvm:@tag:` is tried as `@dispvm:` first).
    private static let keywords: [Keyword] = [
        Keyword(text: "*", token: .wildcard, contexts: source | target),
        Keyword(text: "@adminvm", token: .adminVM, contexts: source | target | redirect | request),
        Keyword(text: "@anyvm", token: .anyVM, contexts: source | target),
        Keyword(text: "@default", token: .defaultTarget, contexts: target | request),
        Keyword(text: "@dispvm", token: .dispVM, contexts: target | redirect | request),
    ]

    private static let prefixes: [Prefix] = [
        Prefix(text: "@type:", make: { .type($0) }, contexts: source | target),
        Prefix(text: "@tag:", make: { .tag($0) }, contexts: source | target),
        Prefix(text: "@dispvm:", make: { .dispVMTemplate($0) }, contexts: source | target | redirect | request),
        Prefix(text: "@dispvm:@tag:", make: { .dispVMTag($0) }, contexts: source | target),
    ]

    /// Reads one token in a context, with the reference's error messages.
    static func parse(_ text: String, context: TokenContext) throws(TokenError) -> PolicyToken {
        if text.isEmpty && context == .redirect {
            throw TokenError(message: "invalid empty redirect token")
        }
        // Prefixes compare code points, as the reference does: `@tag:` followed by a combining
        // mark is still the `@tag:` prefix even though Swift sees one Character there.
        if !text.unicodeScalars.starts(with: "@".unicodeScalars) && text != "*" { return .name(text) }
        for keyword in keywords where keyword.contexts & context.bit != 0 && keyword.text == text {
            return keyword.token
        }
        for prefix in prefixes
        where prefix.contexts & context.bit != 0 && text.unicodeScalars.starts(with: prefix.text.unicodeScalars) {
            let rest = text.unicodeScalars.dropFirst(prefix.text.unicodeScalars.count)
            let value = String(String.UnicodeScalarView(rest))
            if value.isEmpty {
                throw TokenError(message: "invalid empty \(prefix.text) token: \(PythonText.repr(text))")
            }
            // A value starting with `@` belongs to a longer prefix (`@dispvm:@tag:`), or to none.
            if value.unicodeScalars.first == "@" { continue }
            return prefix.make(value)
        }
        throw TokenError(message: "invalid \(context.rawValue) token: \(PythonText.repr(text))")
    }
}
