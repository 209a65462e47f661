// Backend C libraries opened on first use instead of linked. A plugin that
// links libvirt or libxl pays for mapping them (and their dozens of
// dependencies) in every process that merely loads the plugin; a plugin
// that dlopens them at its first open() costs nothing until then, and still
// loads (and fails open() with a clear message) where the library is absent.
//
// A plugin keeps the library's headers for types and constants, declares a
// function-pointer type per call from them (`typedef __typeof__(f) *f_fn;`
// in its module's header), and resolves each call into a table once.
import Glibc

/// Why a backend library could not be used: not installed, unloadable, or
/// lacking a symbol. `message` is one line for the host's ody_error. (A
/// class: a struct's type metadata is reached through a GOT entry, which
/// puts a local symbol into each plugin's .dynsym.)
public final class LibraryError: Error, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }

    /// `try LibraryError.raise("...")` in a plugin instead of `throw`: a
    /// `throw` compiled into the plugin (written there, or copied there by
    /// cross-module optimisation) references this type's Error conformance
    /// through the GOT, which leaks a symbol into the plugin's .dynsym. So
    /// every `throw` of it is one of these two, which the optimiser may
    /// neither inline nor clone into another module (@_optimize(none)).
    @inline(never) @_optimize(none)
    public static func raise(_ message: String) throws(LibraryError) -> Never {
        throw LibraryError(message)
    }

    @inline(never) @_optimize(none)
    static func rethrow(_ error: LibraryError) throws(LibraryError) -> Never {
        throw error
    }
}

/// One dlopen'ed library. Never closed: RTLD_NODELETE keeps it mapped for
/// the life of the process, as plugins themselves are.
public final class SharedLibrary: @unchecked Sendable {
    /// The soname it was opened by, e.g. "libvirt.so.0".
    public let soname: String
    private let handle: UnsafeMutableRawPointer

    private init(soname: String, handle: UnsafeMutableRawPointer) {
        self.soname = soname
        self.handle = handle
    }

    /// dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE). `package` names
    /// the library for people ("libvirt"); a missing file reads
    /// "libvirt is not installed: libvirt.so.0: cannot open shared object file: ...".
    @inline(never)
    public static func open(_ soname: String, package: String) throws(LibraryError) -> SharedLibrary {
        _ = dlerror()
        guard let h = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            let why = dlerror().map { String(cString: $0) } ?? "\(soname): dlopen failed"
            if why.hasPrefix("\(soname): cannot open shared object file") {
                try LibraryError.raise("\(package) is not installed: \(why)")
            }
            try LibraryError.raise("cannot load \(package) (\(soname)): \(why)")
        }
        return SharedLibrary(soname: soname, handle: h)
    }

    /// The address of `name` as a C function pointer of type `T` (a
    /// `@convention(c)` type from the library's header); the caller must
    /// name the type that matches the symbol.
    public func function<T>(_ name: String, as _: T.Type = T.self) throws(LibraryError) -> T {
        precondition(MemoryLayout<T>.size == MemoryLayout<UnsafeMutableRawPointer>.size, "\(T.self) is not a C function pointer")
        return unsafeBitCast(try address(name), to: T.self)
    }

    /// The address of `name`, or an error naming the missing symbol.
    @inline(never)
    public func address(_ name: String) throws(LibraryError) -> UnsafeMutableRawPointer {
        _ = dlerror()
        guard let p = dlsym(handle, name) else {
            let why = dlerror().map { String(cString: $0) } ?? "not found"
            try LibraryError.raise("\(soname) lacks the symbol \(name) (too old a version?): \(why)")
        }
        return p
    }
}

/// A value made once per process on first use, thread-safe: the first caller
/// runs `make`, concurrent callers wait for it. A failure is not kept, so a
/// later call retries (after the library was installed, say).
public final class LoadOnce<Value>: @unchecked Sendable {
    private let lock = PluginLock()
    private var value: Value?
    private let make: () throws(LibraryError) -> Value

    public init(_ make: @escaping () throws(LibraryError) -> Value) { self.make = make }

    public func get() throws(LibraryError) -> Value {
        var failure: LibraryError?
        let v: Value? = lock.with {
            if let value { return value }
            do throws(LibraryError) {
                value = try make()
            } catch {
                failure = error
            }
            return value
        }
        if let v { return v }
        try LibraryError.rethrow(failure!)
    }
}
