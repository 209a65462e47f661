// One rule line to one PolicyRule, checked in the reference's order so that a line with several
// mistakes reports the same one Qubes would.

/// Parses rule lines (the v5 format and the old per-service format of `!include-service`).
enum RuleParser {
    /// A failed line; the loader adds `PATH:LINE: `.
    struct LineError: Error {
        let message: String
    }

    /// Characters of a service name: `[A-Za-z0-9._-]`.
    private static func isServiceCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": return true
        default: return false
        }
    }

    /// Characters of an argument: the service characters plus `+`.
    private static func isArgumentCharacter(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "+" || isServiceCharacter(scalar)
    }

    /// The distinct offending characters, sorted by code point, as the reference lists them.
    private static func invalidCharacters(_ text: String, allowed: (Unicode.Scalar) -> Bool) -> [String] {
        if text.unicodeScalars.allSatisfy(allowed) { return [] }
        let bad = Set(text.unicodeScalars.filter { !allowed($0) })
        return bad.sorted { $0.value < $1.value }.map { String($0) }
    }

    /// Checks SERVICE and ARGUMENT columns; returns nil for `*`.
    static func validateServiceAndArgument(_ service: String, _ argument: String)
        throws(LineError) -> (service: String?, argument: String?) {
        let serviceName: String? = service == "*" ? nil : service
        if let serviceName {
            let bad = invalidCharacters(serviceName, allowed: isServiceCharacter)
            if !bad.isEmpty {
                throw LineError(message: "service \(PythonText.repr(serviceName)) contains invalid characters: "
                                + PythonText.reprTuple(bad))
            }
        }
        let argumentValue: String? = argument == "*" ? nil : argument
        if let argumentValue {
            let bad = invalidCharacters(argumentValue, allowed: isArgumentCharacter)
            if !bad.isEmpty {
                throw LineError(message: "argument \(PythonText.repr(argumentValue)) contains invalid characters: "
                                + PythonText.reprTuple(bad))
            }
            if argumentValue.unicodeScalars.first != "+" {
                throw LineError(message: "argument \(PythonText.repr(argumentValue)) does not start with +")
            }
            if serviceName == nil {
                throw LineError(message: "only * argument allowed for * service")
            }
        }
        return (serviceName, argumentValue)
    }

    /// A v5 line: `SERVICE ARGUMENT SOURCE TARGET ACTION [KEY=VALUE ...]`.
    static func parseRule(fields: [String], path: String, basename: String, line: Int) throws(LineError) -> PolicyRule {
        guard fields.count >= 5 else { throw LineError(message: "wrong number of fields") }
        let (service, argument) = try validateServiceAndArgument(fields[0], fields[1])
        return try build(service: service, argument: argument, source: fields[2], target: fields[3],
                         action: fields[4], params: Array(fields[5...]), path: path, basename: basename, line: line)
    }

    /// An old-format line from `!include-service`: `SOURCE TARGET ACTION [PARAM ...]`, with `$`
    /// already read as `@` and `,` as a space by the caller.
    static func parseServiceRule(service: String?, argument: String?, fields: [String], path: String,
                                 basename: String, line: Int) throws(LineError) -> PolicyRule {
        guard fields.count >= 3 else { throw LineError(message: "wrong number of fields") }
        return try build(service: service, argument: argument, source: fields[0], target: fields[1],
                         action: fields[2], params: Array(fields[3...]), path: path, basename: basename, line: line)
    }

    private static func token(_ text: String, _ context: TokenContext) throws(LineError) -> PolicyToken {
        do {
            return try PolicyToken.parse(text, context: context)
        } catch {
            throw LineError(message: error.message)
        }
    }

    /// Parameter names each action accepts (what the reference's constructors take).
    private static func acceptedParameters(_ kind: ActionKind) -> Set<String> {
        switch kind {
        case .allow: return ["target", "user", "notify", "autostart"]
        case .deny: return ["notify"]
        case .ask: return ["target", "default_target", "user", "notify", "autostart"]
        }
    }

    private static func build(service: String?, argument: String?, source sourceText: String,
                              target targetText: String, action actionText: String, params: [String],
                              path: String, basename: String, line: Int) throws(LineError) -> PolicyRule {
        let source = try token(sourceText, .source)
        let target = try token(targetText, .target)
        guard let kind = ActionKind(rawValue: actionText) else {
            throw LineError(message: "invalid action: \(actionText)")
        }

        var values: [String: String] = [:]
        for param in params {
            guard let equals = param.unicodeScalars.firstIndex(of: "=") else {
                throw LineError(message: "invalid action parameter syntax: \(PythonText.repr(param))")
            }
            let key = String(param.unicodeScalars[..<equals])
            let value = String(param.unicodeScalars[param.unicodeScalars.index(after: equals)...])
            if values[key] != nil {
                throw LineError(message: "parameter given twice: \(PythonText.repr(key))")
            }
            values[key] = value
        }

        // Booleans are checked for every action before the action looks at its parameter names,
        // so `deny autostart=maybe` complains about the value, not the name.
        var flags: [String: Bool] = [:]
        for key in ["notify", "autostart"] {
            guard let value = values[key] else { continue }
            guard value == "yes" || value == "no" else {
                throw LineError(message: "\(PythonText.repr(key)) is \(PythonText.repr(value)), "
                                + "but can be only 'yes' or 'no'")
            }
            flags[key] = value == "yes"
        }

        let accepted = acceptedParameters(kind)
        if values.keys.contains(where: { !accepted.contains($0) }) {
            let className = kind.rawValue.prefix(1).uppercased() + kind.rawValue.dropFirst()
            throw LineError(message: "invalid parameters for action \(className): \(PythonText.reprList(params))")
        }

        let redirect = try values["target"].map { (text) throws(LineError) in try token(text, .redirect) }
        let defaultTarget = try values["default_target"].map { (text) throws(LineError) in
            try token(text, .redirect)
        }
        // `user=` with no value means the default user, as the reference's `user or 'DEFAULT'`.
        let user = values["user"].flatMap { $0.isEmpty ? nil : $0 }
        let action = PolicyAction(kind: kind, redirect: redirect, defaultTarget: defaultTarget,
                                  user: user, notify: flags["notify"],
                                  autostart: flags["autostart"] ?? true)

        if target == .defaultTarget && kind == .allow && redirect == nil {
            throw LineError(message: "allow action for @default rule must specify target= option")
        }
        return PolicyRule(path: path, basename: basename, line: line, service: service, argument: argument,
                          source: source, target: target, action: action)
    }
}
