// Why a policy could not load. Any of these makes the whole policy deny everything.

/// A policy that failed to load. `description` is the exact text the reference prints:
/// `PATH:LINE: message` for an error in a file, or a message without a line
/// (`invalid filename: PATH`, `failed to load PATH file: ...`).
public struct PolicyLoadError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file at fault, if any.
    public let path: String?
    /// The line at fault, if the error is about one line.
    public let line: Int?
    /// The message without the `PATH:LINE: ` prefix.
    public let message: String
    public let description: String

    /// An error on one line of a file.
    public init(path: String, line: Int, message: String) {
        self.path = path
        self.line = line
        self.message = message
        self.description = "\(path):\(line): \(message)"
    }

    /// An error about a whole file or directory; the message already names it.
    public init(path: String?, message: String) {
        self.path = path
        self.line = nil
        self.message = message
        self.description = message
    }

    /// The reference's wording for a file that exists in a listing but cannot be used.
    static func invalidFilename(_ path: String) -> PolicyLoadError {
        PolicyLoadError(path: path, message: "invalid filename: \(path)")
    }

    /// The reference turns an OS error while reading into
    /// `failed to load PATH file: [Errno N] STRERROR: 'PATH'`.
    static func failedToLoad(_ path: String, errno code: Int32, reason: String) -> PolicyLoadError {
        PolicyLoadError(path: path, message:
            "failed to load \(path) file: [Errno \(code)] \(reason): \(PythonText.repr(path))")
    }
}
