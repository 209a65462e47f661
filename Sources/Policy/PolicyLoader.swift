// Turns policy directories (or one in-memory text) into the ordered rule list, following the
// directives. Any error stops the load: the caller then denies everything.

/// Collects rules from files, directories and directives, in the reference's order.
final class PolicyLoader {
    private(set) var rules: [PolicyRule] = []
    /// `!include` paths resolve against the directory of the top-level file being loaded, not
    /// against the including file (the reference's `policy_path`).
    private var baseDirectory = "."
    /// Resolved paths being loaded right now, to refuse an include loop instead of recursing
    /// until the stack runs out (the reference would crash there).
    private var loading: [String] = []
    private static let maximumIncludeDepth = 32

    /// Loads directories merged by file basename; the first directory wins a clash.
    static func load(directories: [String]) throws(PolicyLoadError) -> [PolicyRule] {
        var seen: Set<String> = []
        var chosen: [PolicyFiles.Entry] = []
        for directory in directories {
            for entry in try PolicyFiles.policyFiles(in: directory) where !seen.contains(entry.name) {
                seen.insert(entry.name)
                chosen.append(entry)
            }
        }
        chosen.sort { PolicyFiles.codePointLess($0.name, $1.name) }
        let loader = PolicyLoader()
        for entry in chosen {
            loader.baseDirectory = entry.directory
            try loader.loadFile(text: try PolicyFiles.readText(entry.path), path: entry.path)
        }
        return loader.rules
    }

    /// Parses one text as if it were a top-level file at `path`. Includes resolve against the
    /// directory of `path`.
    static func parse(text: String, path: String) throws(PolicyLoadError) -> [PolicyRule] {
        let loader = PolicyLoader()
        loader.baseDirectory = PythonText.parent(path)
        try loader.loadFile(text: text, path: path)
        return loader.rules
    }

    // MARK: v5 files

    private func loadFile(text: String, path: String) throws(PolicyLoadError) {
        let basename = PythonText.basename(path)
        for (offset, rawLine) in PythonText.lines(text).enumerated() {
            let line = offset + 1
            let fields = PythonText.splitFields(rawLine.unicodeScalars)
            guard let first = fields.first, first.unicodeScalars.first != "#" else { continue }
            if first.unicodeScalars.first == "!" {
                try directive(fields, path: path, line: line)
                continue
            }
            do {
                rules.append(try RuleParser.parseRule(fields: fields, path: path, basename: basename, line: line))
            } catch {
                throw PolicyLoadError(path: path, line: line, message: error.message)
            }
        }
    }

    private func directive(_ fields: [String], path: String, line: Int) throws(PolicyLoadError) {
        let params = Array(fields.dropFirst())
        func requireParams(_ count: Int) throws(PolicyLoadError) {
            if params.count != count {
                throw PolicyLoadError(path: path, line: line, message: "invalid number of params")
            }
        }
        switch fields[0] {
        case "!include":
            try requireParams(1)
            let included = try resolveFile(params[0], path: path, line: line)
            try nested(included, path: path, line: line) { () throws(PolicyLoadError) in
                try loadFile(text: try PolicyFiles.readText(included), path: included)
            }
        case "!include-dir":
            try requireParams(1)
            let directory = PolicyFiles.resolve(PythonText.join(baseDirectory, params[0]))
            guard PolicyFiles.isDirectory(directory) else {
                throw PolicyLoadError(path: path, line: line, message: "not a directory: \(directory)")
            }
            for entry in try PolicyFiles.policyFiles(in: directory) {
                try nested(entry.path, path: path, line: line) { () throws(PolicyLoadError) in
                    try loadFile(text: try PolicyFiles.readText(entry.path), path: entry.path)
                }
            }
        case "!include-service":
            try requireParams(3)
            try includeService(service: params[0], argument: params[1], file: params[2], path: path, line: line)
        case "!compat-4.0":
            try requireParams(0)
            // R4.0 per-service files are not read by Odyssey; ignoring the directive would
            // silently drop rules, so the whole policy is refused instead.
            throw PolicyLoadError(path: path, line: line, message:
                "!compat-4.0 is not supported: convert the R4.0 per-service policy files to the v5 format")
        default:
            throw PolicyLoadError(path: path, line: line, message: "invalid directive")
        }
    }

    private func resolveFile(_ written: String, path: String, line: Int) throws(PolicyLoadError) -> String {
        let resolved = PolicyFiles.resolve(PythonText.join(baseDirectory, written))
        guard PolicyFiles.isRegularFile(resolved) else {
            throw PolicyLoadError(path: path, line: line, message: "not a file: \(resolved)")
        }
        return resolved
    }

    /// Runs `body` for an included file, refusing loops and runaway nesting.
    private func nested(_ included: String, path: String, line: Int,
                        _ body: () throws(PolicyLoadError) -> Void) throws(PolicyLoadError) {
        if loading.contains(included) {
            throw PolicyLoadError(path: path, line: line, message: "include loop: \(included)")
        }
        if loading.count >= PolicyLoader.maximumIncludeDepth {
            throw PolicyLoadError(path: path, line: line, message: "includes nested too deeply: \(included)")
        }
        loading.append(included)
        defer { loading.removeLast() }
        try body()
    }

    // MARK: old per-service files

    private func includeService(service: String, argument: String, file: String, path: String,
                                line: Int) throws(PolicyLoadError) {
        let validated: (service: String?, argument: String?)
        do {
            validated = try RuleParser.validateServiceAndArgument(service, argument)
        } catch {
            throw PolicyLoadError(path: path, line: line, message: error.message)
        }
        try includeService(validated.service, validated.argument, file: file, path: path, line: line)
    }

    private func includeService(_ service: String?, _ argument: String?, file: String, path: String,
                                line: Int) throws(PolicyLoadError) {
        let included = try resolveFile(file, path: path, line: line)
        try nested(included, path: path, line: line) { () throws(PolicyLoadError) in
            try loadServiceFile(service, argument, text: try PolicyFiles.readText(included), path: included)
        }
    }

    /// Old format: `SOURCE TARGET ACTION[,PARAM...]`, `$` for `@`, `$include:PATH` for a nested
    /// per-service include. No other directive is allowed.
    private func loadServiceFile(_ service: String?, _ argument: String?, text: String,
                                 path: String) throws(PolicyLoadError) {
        let basename = PythonText.basename(path)
        for (offset, rawLine) in PythonText.lines(text).enumerated() {
            let line = offset + 1
            let stripped = PythonText.strip(rawLine)
            if stripped.isEmpty || stripped.unicodeScalars.first == "#" { continue }
            let rewritten = oldSyntaxToNew(String(stripped))
            let fields = PythonText.splitFields(Substring(rewritten).unicodeScalars)
            if rewritten.unicodeScalars.first == "!" {
                guard fields.first == "!include" else {
                    throw PolicyLoadError(path: path, line: line, message: "invalid directive")
                }
                guard fields.count == 2 else {
                    throw PolicyLoadError(path: path, line: line, message: "invalid number of params")
                }
                try includeService(service, argument, file: fields[1], path: path, line: line)
                continue
            }
            do {
                rules.append(try RuleParser.parseServiceRule(service: service, argument: argument, fields: fields,
                                                             path: path, basename: basename, line: line))
            } catch {
                throw PolicyLoadError(path: path, line: line, message: error.message)
            }
        }
    }

    /// The reference's compatibility substitutions, in its order.
    private func oldSyntaxToNew(_ line: String) -> String {
        var scalars = String.UnicodeScalarView()
        let source = Array(line.unicodeScalars)
        let includeMarker = Array("$include:".unicodeScalars)
        var index = 0
        while index < source.count {
            if source[index] == "$", source[index...].starts(with: includeMarker) {
                scalars.append(contentsOf: "!include ".unicodeScalars)
                index += includeMarker.count
                continue
            }
            switch source[index] {
            case "$": scalars.append("@")
            case ",": scalars.append(" ")
            default: scalars.append(source[index])
            }
            index += 1
        }
        return String(scalars)
    }
}
