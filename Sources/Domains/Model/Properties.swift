// Domain and global properties: types, defaults and inheritance, as data.
//
// Values are kept as text in the store (what the Admin API speaks):
//   bool "True"/"False", int decimal, label its name, str the text,
//   vm the target's UUID (names are resolved when presenting; "" = None).

public enum PropertyType: String, Sendable {
    case str, int, bool, vm, label
}

/// Where a property's value comes from when it is not set on the domain.
indirect enum DefaultRule: Sendable {
    /// No default: required at creation, cannot be reset.
    case required
    /// A fixed value (text form; "" for a vm property = None).
    case fixed(String)
    /// The effective value of a global property.
    case global(String)
    /// Qubes `_default_with_template`: the template's effective value if the
    /// domain has a template, else `fallback`.
    case template(DefaultRule)
    /// Computed from the domain itself; such properties are read-only.
    case computed(@Sendable (DomainRecord) -> String)
}

public struct PropertyDefinition: Sendable {
    public let name: String
    public let type: PropertyType
    public let help: String
    let rule: DefaultRule
    /// Classes that have this property.
    let classes: Set<DomainClass>
    public let readOnly: Bool
    /// vm properties: whether None ("") is allowed.
    let allowNone: Bool
    /// Fixed at creation and reported `default=False`, as qubesd reports the
    /// properties it sets when it creates a domain (name, qid, uuid).
    public let setAtCreation: Bool
    /// The value lives in the running domain, not the store (xid,
    /// start_time): the store answers the halted value, the daemon the live one.
    public let live: Bool

    init(_ name: String, _ type: PropertyType, _ rule: DefaultRule, classes: Set<DomainClass> = PropertyDefinition.qubesVMs,
         readOnly: Bool = false, allowNone: Bool = true, setAtCreation: Bool = false, live: Bool = false, help: String) {
        self.name = name
        self.type = type
        self.rule = rule
        self.classes = classes
        self.readOnly = readOnly
        self.allowNone = allowNone
        self.setAtCreation = setAtCreation
        self.live = live
        self.help = help
    }

    public var hasDefault: Bool { if case .required = rule { false } else { true } }

    static let all: Set<DomainClass> = Set(DomainClass.allCases)
    static let qubesVMs: Set<DomainClass> = [.templateVM, .appVM, .standaloneVM, .dispVM]
    static let templated: Set<DomainClass> = [.appVM, .dispVM]
}

public enum PropertyTable {
    /// Qubes defaults (qubes/vm/qubesvm.py, qubes/config.py).
    public static let defaultMemory = 400
    public static let defaultMaxmem = 4000
    public static let defaultVcpus = 2

    /// Domain properties, in the order admin.vm.property.List reports them (sorted by name).
    public static let domain: [PropertyDefinition] = [
        .init("audiovm", .vm, .global("default_audiovm"), help: "Domain that provides audio to this domain"),
        .init("autostart", .bool, .fixed("False"), help: "Start the domain when the host starts"),
        .init("auto_cleanup", .bool, .fixed("False"), classes: [.dispVM],
              help: "Remove the disposable when it is shut down (True for unnamed disposables)"),
        .init("debug", .bool, .fixed("False"), help: "Debug mode: keep logs and consoles"),
        .init("default_dispvm", .vm, .global("default_dispvm"), classes: PropertyDefinition.all,
              help: "Default disposable template for disposables started from this domain"),
        .init("default_user", .str, .template(.fixed("user")), classes: PropertyDefinition.all,
              help: "Default user to run commands as"),
        .init("guivm", .vm, .global("default_guivm"), help: "Domain that provides the GUI to this domain"),
        .init("icon", .str, .computed { _ in "" }, classes: PropertyDefinition.all,   // resolved in DomainsSnapshot.defaultRaw
              readOnly: true, help: "Icon name, derived from the class and the label (appvm-blue)"),
        .init("include_in_backups", .bool, .fixed("True"), help: "Include this domain in backups"),
        .init("kernel", .str, .template(.global("default_kernel")), help: "Kernel used by the domain (empty: the provider's default)"),
        .init("kernelopts", .str, .template(.fixed("")), help: "Kernel command line options"),
        .init("klass", .str, .computed { $0.klass.rawValue }, classes: PropertyDefinition.all, readOnly: true,
              help: "Domain class"),
        // qubesd: the GUI domain's layout (us++ without one); the admin domain's own is us++.
        .init("keyboard_layout", .str, .fixed("us++"), classes: PropertyDefinition.all,
              help: "Keyboard layout for this domain: LAYOUT+VARIANT+OPTIONS (us++)"),
        .init("label", .label, .required, classes: PropertyDefinition.all, help: "Colourful label assigned to the domain"),
        .init("management_dispvm", .vm, .template(.global("management_dispvm")),
              help: "Disposable template for disposables that manage this domain"),
        .init("maxmem", .int, .template(.fixed(String(defaultMaxmem))), help: "Maximum memory in MiB"),
        .init("memory", .int, .template(.fixed(String(defaultMemory))), help: "Initial memory in MiB"),
        .init("name", .str, .computed { $0.name }, classes: PropertyDefinition.all, readOnly: true, setAtCreation: true,
              help: "Domain name (cannot be changed)"),
        .init("netvm", .vm, .global("default_netvm"),
              help: "Domain that provides network to this domain (must have provides_network)"),
        .init("provides_network", .bool, .fixed("False"), help: "Whether this domain can be the netvm of others"),
        .init("qid", .int, .computed { String($0.qid) }, classes: PropertyDefinition.all, readOnly: true, setAtCreation: true,
              help: "Internal numeric identifier"),
        .init("qrexec_timeout", .int, .template(.global("default_qrexec_timeout")),
              help: "Seconds to wait for the domain's agent at start"),
        .init("shutdown_timeout", .int, .template(.global("default_shutdown_timeout")),
              help: "Seconds to wait for a clean shutdown before killing"),
        // Live values (the daemon fills them in while the domain runs); qubesd: None when halted.
        .init("start_time", .str, .computed { _ in "" }, readOnly: true, live: true,
              help: "When the domain was started (UNIX time; empty when halted)"),
        .init("template", .vm, .required, classes: PropertyDefinition.templated, allowNone: false,
              help: "Template the domain's root comes from (a TemplateVM; for a DispVM, a disposable template)"),
        .init("template_for_dispvms", .bool, .fixed("False"), classes: [.appVM, .standaloneVM],
              help: "Whether disposables can be created from this domain"),
        .init("updateable", .bool, .computed { PropertyTable.rootPersists($0) ? "True" : "False" }, readOnly: true,
              help: "Whether changes to the root volume persist (TemplateVM, StandaloneVM)"),
        .init("uuid", .str, .computed { $0.uuid.text }, classes: PropertyDefinition.all, readOnly: true, setAtCreation: true,
              help: "UUID of the domain"),
        .init("vcpus", .int, .template(.fixed(String(defaultVcpus))), help: "Number of virtual CPUs"),
        .init("virt_mode", .str, .template(.fixed("pvh")), help: "Virtualisation mode (pv, pvh, hvm; providers may ignore it)"),
        .init("xid", .int, .computed { _ in "-1" }, readOnly: true, live: true,
              help: "The provider's id of the running domain (-1 when halted, or when the provider reports none)"),
        .init("vmm", .str, .template(.global("default_vmm")),
              help: "Isolation provider of the domain (a vmm factory name); tags the domain isolation-<provider>"),
    ]

    /// Global properties (admin.property.*).
    public static let global: [PropertyDefinition] = [
        .init("check_updates_vm", .bool, .fixed("True"), classes: [], help: "Check for updates inside domains"),
        .init("clockvm", .vm, .fixed(""), classes: [], help: "Domain that provides time"),
        .init("default_audiovm", .vm, .fixed(DomainUUID.adminVM.text), classes: [], help: "Default audio domain"),
        .init("default_dispvm", .vm, .fixed(""), classes: [], help: "Default disposable template"),
        .init("default_guivm", .vm, .fixed(DomainUUID.adminVM.text), classes: [], help: "Default GUI domain"),
        .init("default_kernel", .str, .fixed(""), classes: [], help: "Default kernel (empty: the provider's default)"),
        .init("default_netvm", .vm, .fixed(""), classes: [], help: "Default network domain"),
        .init("default_pool", .str, .fixed("default"), classes: [], help: "Default storage pool (Odyssey has one: default)"),
        .init("default_pool_kernel", .str, .global("default_pool"), classes: [], help: "Default storage pool for kernel volumes"),
        .init("default_pool_private", .str, .global("default_pool"), classes: [], help: "Default storage pool for private volumes"),
        .init("default_pool_root", .str, .global("default_pool"), classes: [], help: "Default storage pool for root volumes"),
        .init("default_pool_volatile", .str, .global("default_pool"), classes: [], help: "Default storage pool for volatile volumes"),
        .init("default_qrexec_timeout", .int, .fixed("60"), classes: [], help: "Default qrexec_timeout in seconds"),
        .init("default_shutdown_timeout", .int, .fixed("60"), classes: [], help: "Default shutdown_timeout in seconds"),
        .init("default_template", .vm, .fixed(""), classes: [], help: "Default template for new AppVMs"),
        .init("default_vmm", .str, .fixed(""), classes: [], help: "Default isolation provider (from the host config)"),
        .init("management_dispvm", .vm, .fixed(""), classes: [], help: "Disposable template for management tasks"),
        .init("stats_interval", .int, .fixed("3"), classes: [], help: "Seconds between domain statistics"),
        .init("updatevm", .vm, .fixed(""), classes: [], help: "Domain that downloads updates"),
    ]

    /// Integer properties are Qubes' positive integers, with a ceiling: a
    /// delegate set maxmem 1 PiB, vcpus 100000 and qrexec_timeout 99999999
    /// (issue 11, finding 16). Memory in MiB (1 TiB), the vcpus a backend
    /// accepts (512, as admin.odyssey.vmm.Define), timeouts and intervals in
    /// seconds (one hour: a start or shutdown that waits longer is stuck).
    public static let intMaximum: [String: Int] = [
        "memory": 1 << 20, "maxmem": 1 << 20, "vcpus": 512,
        "qrexec_timeout": 3600, "shutdown_timeout": 3600,
        "default_qrexec_timeout": 3600, "default_shutdown_timeout": 3600, "stats_interval": 3600,
    ]
    /// `kernelopts`: a kernel command line (Linux's own limit is 2048 bytes on x86).
    public static let maxKerneloptsBytes = 1024
    /// `kernel`, `default_kernel`: a name in the provider's kernel pool.
    public static let maxKernelNameBytes = 64

    static let domainByName: [String: PropertyDefinition] = Dictionary(uniqueKeysWithValues: domain.map { ($0.name, $0) })
    static let globalByName: [String: PropertyDefinition] = Dictionary(uniqueKeysWithValues: global.map { ($0.name, $0) })

    /// The definition for `name` on a domain of class `klass`, or nil.
    public static func definition(_ name: String, for klass: DomainClass) -> PropertyDefinition? {
        guard let d = domainByName[name], d.classes.contains(klass) else { return nil }
        return d
    }

    public static func names(for klass: DomainClass) -> [String] {
        domain.filter { $0.classes.contains(klass) }.map(\.name).sorted()
    }

    /// Internal, set once at creation: the domain's own root shares inodes
    /// with the host (a `--from-host` template, or a StandaloneVM cloned from
    /// one). Such a root only ever runs as a snapshot (writing it would write
    /// the host's files), so its changes are lost at stop and it is not
    /// `updateable`. The leading dot makes it no valid property name: no
    /// Admin API call can read, set or reset it.
    public static let rootHostLinkedKey = ".root-hostlinked"

    /// Whether changes to the domain's root persist across a stop (Qubes' `updateable`).
    static func rootPersists(_ r: DomainRecord) -> Bool {
        r.klass.persistentRoot && r.properties[rootHostLinkedKey] == nil
    }

    /// Parses Qubes bool text ("True", "false", "1", "on", "" = False).
    static func parseBool(_ s: String) -> Bool? {
        switch s.lowercased() {
        case "true", "yes", "on", "1": true
        case "false", "no", "off", "0", "": false
        default: nil
        }
    }
}
