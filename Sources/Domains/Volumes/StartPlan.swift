// What a provider needs to start a domain, said without naming a provider:
// volumes by role, each as a host tree (vmm-native mounts directories) or a
// disk image (a VM provider attaches block devices), plus the run dir.
// The host maps PlannedVolume onto the ABI's ody_volume one to one.

/// How a start hands volumes to its provider.
public enum StartForm: String, Sendable {
    /// Host directories; the private image is loop-mounted by the host (vmm-native).
    case tree
    /// Disk images the provider attaches (ODY_VMM_CAP_BLOCK_VOLUMES); the host mounts nothing.
    case image
}

/// How the plugin must mount the root (vmm-native's `root_mode`).
public enum RootMode: String, Sendable {
    /// root_dir is the read-only lower layer of an overlay; the upper is discarded at stop.
    case snapshot
    /// root_dir is mounted read-write and changes persist.
    case persistent
}

/// One volume of a start (ody_volume).
public struct PlannedVolume: Sendable, Equatable {
    public enum Role: String, Sendable { case root, `private`, volatile, modules }
    public enum Form: String, Sendable { case tree, image, none }
    public let role: Role
    public let form: Form
    /// Writes go to a per-start copy-on-write layer the provider makes in the
    /// run dir and discards at stop; `path` itself is never written.
    public let snapshot: Bool
    public let readOnly: Bool
    /// A directory (tree), an image file (image), empty (none).
    public let path: String
    /// The volume's size (none: the size of the scratch file to make; 0: its own).
    public let sizeMiB: UInt64

    public init(role: Role, form: Form, snapshot: Bool = false, readOnly: Bool = false, path: String, sizeMiB: UInt64 = 0) {
        self.role = role; self.form = form; self.snapshot = snapshot; self.readOnly = readOnly
        self.path = path; self.sizeMiB = sizeMiB
    }
}

public struct StartPlan: Sendable, Equatable {
    public let form: StartForm
    public let volumes: [PlannedVolume]
    public let runDir: String

    public init(form: StartForm, volumes: [PlannedVolume], runDir: String) {
        self.form = form; self.volumes = volumes; self.runDir = runDir
    }

    /// The tree form as it always was (root dir + mode, private dir).
    public init(rootDir: String, rootMode: RootMode, privateDir: String?, runDir: String) {
        var v = [PlannedVolume(role: .root, form: .tree, snapshot: rootMode == .snapshot, path: rootDir)]
        if let privateDir { v.append(PlannedVolume(role: .private, form: .tree, path: privateDir)) }
        self.init(form: .tree, volumes: v, runDir: runDir)
    }

    public func volume(_ role: PlannedVolume.Role) -> PlannedVolume? { volumes.first { $0.role == role } }

    /// The root's path: a directory (tree) or root.img (image).
    public var rootDir: String { volume(.root)?.path ?? "" }
    public var rootMode: RootMode { volume(.root)?.snapshot == false ? .persistent : .snapshot }
    /// nil: the domain has no private volume.
    public var privateDir: String? { volume(.private)?.path }

}
