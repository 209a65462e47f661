// What a `--from-host` template takes from the host, as data. Every rule has
// its reason; tests assert that every excluded path is absent from the result.
//
// Principle: a template is readable by every domain built on it, so nothing
// that the host keeps from ordinary users may go in. Two rules do most of the
// work and need no list: (1) nothing that is not world-readable is taken (a
// file without o+r, a directory without o+rx: /etc/shadow 0640,
// /etc/ssl/private 0700, /etc/sudoers 0440...); (2) host identity and
// credentials that *are* world-readable are excluded by name below.

public struct HostTemplateRules: Sendable {
    public struct Exclusion: Sendable {
        /// A glob relative to the host root (fnmatch with FNM_PATHNAME: `*` stays within one component).
        public let pattern: String
        public let reason: String
        public init(_ pattern: String, _ reason: String) {
            self.pattern = pattern
            self.reason = reason
        }
    }

    public struct Generated: Sendable {
        public let path: String
        public let content: String
        public let mode: UInt32
    }

    /// Top-level host entries taken (symlinks such as /bin -> usr/bin are kept as symlinks).
    public var include: [String]
    public var exclude: [Exclusion]
    /// Skip files without o+r and directories without o+rx (see above).
    public var excludeNotWorldReadable: Bool
    /// setuid/setgid files are copied without those bits instead of linked: a
    /// hard link would keep an old setuid binary alive after the host upgrades
    /// it, and a domain has no use for host setuid bits.
    public var dropSetID: Bool
    /// Empty mount points the domain's root needs, with their modes.
    public var emptyDirs: [(String, UInt32)]
    /// Files written into the template (the host's are excluded above).
    public var generated: [Generated]

    public static let standard = HostTemplateRules(
        include: ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"],
        exclude: [
            // Accounts and credentials (most are also not world-readable).
            .init("etc/shadow", "password hashes"), .init("etc/shadow-", "backup of password hashes"),
            .init("etc/gshadow", "group password hashes"), .init("etc/gshadow-", "backup of group password hashes"),
            .init("etc/passwd", "the host's accounts (a minimal one is generated)"),
            .init("etc/passwd-", "backup of the host's accounts"),
            .init("etc/group", "the host's groups (a minimal one is generated)"), .init("etc/group-", "backup of the host's groups"),
            .init("etc/subuid", "the host's uid delegations"), .init("etc/subuid-", "backup"),
            .init("etc/subgid", "the host's gid delegations"), .init("etc/subgid-", "backup"),
            .init("etc/.pwd.lock", "account database lock"),
            .init("etc/security/opasswd", "old password hashes"),
            .init("etc/sudoers", "host privilege rules"), .init("etc/sudoers.d", "host privilege rules"),
            .init("etc/doas.conf", "host privilege rules"),
            // Host keys and certificates' private halves.
            .init("etc/ssh/*key*", "SSH host keys (private, and the public ones identify the host)"),
            .init("etc/ssl/private", "TLS private keys"), .init("etc/pki/*/private", "TLS private keys (RHEL layout)"),
            .init("etc/letsencrypt", "ACME account and certificate keys"),
            .init("etc/krb5.keytab", "Kerberos host key"), .init("etc/ipsec.secrets", "IPsec secrets"),
            .init("etc/ipsec.d/private", "IPsec private keys"), .init("etc/wireguard", "WireGuard keys"),
            .init("etc/openvpn", "VPN keys and credentials"), .init("etc/ppp/*secrets", "PPP passwords"),
            .init("etc/NetworkManager/system-connections", "Wi-Fi and VPN passwords"),
            .init("etc/wpa_supplicant", "Wi-Fi passwords"), .init("etc/cups/ssl", "printing server keys"),
            .init("etc/docker/key.json", "Docker daemon key"), .init("etc/libvirt/secrets", "libvirt secrets"),
            .init("etc/apt/auth.conf", "repository credentials"), .init("etc/apt/auth.conf.d", "repository credentials"),
            .init("etc/credstore", "systemd credentials"), .init("etc/credstore.encrypted", "systemd credentials"),
            .init("etc/crypttab", "disk encryption key locations"), .init("etc/samba/smbpasswd", "SMB passwords"),
            .init("etc/odyssey", "this host's Odyssey configuration and policy"),
            // Host identity and host-specific state.
            .init("etc/machine-id", "stable host identifier"), .init("etc/hostid", "stable host identifier"),
            .init("etc/hostname", "host name (generated)"), .init("etc/hosts", "host names (generated)"),
            .init("etc/resolv.conf", "host network configuration"), .init("etc/fstab", "host disk layout"),
            .init("etc/mtab", "host mounts"), .init("etc/adjtime", "host clock state"),
            // Size, not secrecy: documentation and debug symbols are a quarter of
            // /usr's files on a typical host, are not needed to run programs, and
            // creation time is proportional to the number of files linked.
            // Remove these four lines to keep them.
            .init("usr/share/doc", "documentation (size)"), .init("usr/share/man", "manual pages (size)"),
            .init("usr/share/info", "info pages (size)"), .init("usr/lib/debug", "debug symbols (size)"),
            // Never taken even if a rule above is edited (also not in `include`).
            .init("root", "root's home"), .init("home", "users' homes"), .init("var", "host state, logs, caches"),
        ],
        excludeNotWorldReadable: true,
        dropSetID: true,
        emptyDirs: [("home", 0o755), ("root", 0o700), ("tmp", 0o1777), ("var", 0o755), ("var/tmp", 0o1777),
                    ("var/log", 0o755), ("var/lib", 0o755), ("var/cache", 0o755), ("run", 0o755), ("proc", 0o555),
                    ("sys", 0o555), ("dev", 0o755), ("rw", 0o755), ("mnt", 0o755), ("opt", 0o755), ("srv", 0o755)],
        generated: [
            Generated(path: "etc/passwd", content: """
                root:x:0:0:root:/root:/bin/sh
                user:x:1000:1000:user:/home/user:/bin/bash
                nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin

                """, mode: 0o644),
            Generated(path: "etc/group", content: """
                root:x:0:
                tty:x:5:
                users:x:100:user
                user:x:1000:
                nogroup:x:65534:

                """, mode: 0o644),
            Generated(path: "etc/hostname", content: "localhost\n", mode: 0o644),
            Generated(path: "etc/hosts", content: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", mode: 0o644),
        ]
    )

    /// The exclusion matching `relative` (a path below the host root, no leading /), if any.
    /// Only patterns with the same first component are tried (most are
    /// under etc/; the ~100k files under usr/ then cost no fnmatch at all).
    func exclusion(for relative: String) -> Exclusion? {
        let top = relative.split(separator: "/", maxSplits: 1).first.map(String.init) ?? relative
        return exclude.first { ex in
            let pTop = ex.pattern.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ex.pattern
            return (pTop == top || pTop.contains("*")) && fnmatchPath(ex.pattern, relative)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

func fnmatchPath(_ pattern: String, _ path: String) -> Bool {
    fnmatch(pattern, path, FNM_PATHNAME | FNM_PERIOD) == 0
}
