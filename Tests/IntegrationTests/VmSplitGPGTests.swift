// Split GPG with the vault in a VM (issue 12, "add-ons in a VM"): the key is
// made in, and never leaves, a libvirt/QEMU domain (TCG here); a native domain
// signs, verifies, encrypts and decrypts through `ody-gpg`, under the same
// policy and consent ask as the native journey in AddonIntegrationTests. Real
// odysseyd, real libvirtd and QEMU, the guest kit's kernel; gpg and gpg-agent
// copied into a busybox template with their library closure. One VM boot
// serves every check (a TCG boot costs ~8 s).
import Foundation
import XCTest

final class VmSplitGPGTests: XCTestCase {
    private var dp: DaemonProcess!
    private var vault = ""

    override func tearDown() {
        dp?.tearDown()
        VmTier.removeDomains(owner: vault)   // a VM outlives its daemon by design: none of ours is left
    }

    /// Copies `binary` into `rootfs` at the same path, with every library
    /// `ldd` names (the loader included), so a glibc program runs in a
    /// busybox root. Symlinked libraries are copied as the file they name.
    static func copyWithLibraries(_ binary: String, into rootfs: String) throws {
        let fm = FileManager.default
        let ldd = Process(); ldd.executableURL = URL(fileURLWithPath: "/usr/bin/ldd"); ldd.arguments = [binary]
        let out = Pipe(); ldd.standardOutput = out; ldd.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try ldd.run()
        let listing = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ldd.waitUntilExit()
        guard ldd.terminationStatus == 0 else { throw XCTSkip("ldd \(binary) failed: \(listing)") }
        // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)":
        // the absolute path is the word before the address.
        var files = [binary]
        for line in listing.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if let path = words.last(where: { $0.hasPrefix("/") }) { files.append(path) }
        }
        for file in files where !fm.fileExists(atPath: rootfs + file) {
            // realpath(3), not NSString's resolvingSymlinksInPath (which leaves
            // libgcrypt.so.20 -> libgcrypt.so.20.4.1 a link here, dangling in the copy).
            guard let real = realpath(file, nil) else { throw XCTSkip("\(file) (a library of \(binary)) cannot be resolved") }
            defer { free(real) }
            try fm.createDirectory(atPath: rootfs + (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fm.copyItem(atPath: String(cString: real), toPath: rootfs + file)
        }
    }

    /// A daemon with a native `work` and a libvirt vault VM in one busybox
    /// template that holds gpg; the policy lets work call qubes.Gpg in the
    /// vault (the add-on's own file keeps odyssey.GpgConsent an ask).
    private func makeDaemon() throws {
        let pool = try VmTier.require()
        for tool in ["/usr/bin/gpg", "/usr/bin/gpg-agent"] where !FileManager.default.isExecutableFile(atPath: tool) {
            XCTFail("\(tool) is not installed (scripts/install-deps installs gnupg)")
            throw XCTSkip("no \(tool)")
        }
        vault = "vlt\(UUID().uuidString.prefix(6).lowercased())"
        dp = try VmTier.daemon("vmgpg", owner: vault, pool: pool)
        let rootfs = try Build.busyboxRootfs(at: dp.dir + "/rootfs")
        // gpg finds gpg-agent at its build-time path (/usr/bin) and starts it
        // itself; the add-ons' runner needs the same loader and libc.
        for tool in ["/usr/bin/gpg", "/usr/bin/gpg-agent"] { try Self.copyWithLibraries(tool, into: rootfs) }
        for applet in ["cut", "test"] {
            try? FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        var r = try dp.ody(["template", "create", "tpl", "--from-rootfs", rootfs])
        XCTAssertEqual(r.0, 0, r.1)
        let policy = dp.dir + "/state/policy.d"
        try FileManager.default.createDirectory(atPath: policy, withIntermediateDirectories: true)
        try "qubes.Gpg * work \(vault) allow\n".write(toFile: policy + "/30-vm-gpg.policy", atomically: true, encoding: .utf8)
        r = try dp.ody(["create", "work", "--class", "AppVM", "--template", "tpl", "--label", "blue"])
        XCTAssertEqual(r.0, 0, r.1)
        r = try dp.ody(["create", vault, "--class", "AppVM", "--template", "tpl", "--label", "black", "--prop", "vmm=libvirt"])
        XCTAssertEqual(r.0, 0, r.1)
    }

    private func run(_ d: String, _ cmd: String) throws -> (Int32, String) {
        try dp.ody(["run", "-p", "-u", "user", d, "--", cmd])
    }

    private struct PendingAsk: Decodable {
        var id: String, source: String, service: String, choices: [String], defaultTarget: String?
    }

    /// Waits (up to `seconds`) for an ask on `service` and answers it allow,
    /// as `ody policy pending` / `ody policy answer` would; returns the ask.
    private func answerAsk(_ service: String, within seconds: Int) throws -> PendingAsk? {
        for _ in 0..<(seconds * 10) {
            let listed = try dp.ody(["policy", "pending", "--json"]).1
            if let ask = (try? JSONDecoder().decode([PendingAsk].self, from: Data(listed.utf8)))?.first(where: { $0.service == service }) {
                let target = ask.defaultTarget ?? ask.choices.first ?? "dom0"
                let r = try dp.ody(["policy", "answer", ask.id, "allow", target])
                XCTAssertEqual(r.0, 0, r.1)
                return ask
            }
            usleep(100_000)
        }
        return nil
    }

    private func seconds(since t: Date) -> String { String(format: "%.2f s", Date().timeIntervalSince(t)) }

    func testSplitGPGWithTheVaultInAVm() throws {
        try makeDaemon()
        var r = try dp.ody(["start", "work"])
        XCTAssertEqual(r.0, 0, r.1)
        var t = Date()
        r = try dp.ody(["start", vault])
        XCTAssertEqual(r.0, 0, "VM start: \(r.1)\n--- daemon log ---\n\(dp.log.suffix(3000))")
        guard r.0 == 0 else { return }
        print("VM split-GPG: \(vault) start to agent ready \(seconds(since: t))")

        // The key is made in the vault (passphrase-less: no pinentry in a
        // vault without a display), an ed25519 signing key with a cv25519
        // encryption subkey; gpg starts its own gpg-agent in the guest.
        t = Date()
        r = try run(vault, """
            gpg --batch --passphrase '' --quick-gen-key 'Vault <vault@example.org>' ed25519 sign never &&
            fpr=$(gpg --batch --with-colons --list-secret-keys | grep '^fpr' | head -n 1 | cut -d: -f10) &&
            gpg --batch --passphrase '' --quick-add-key "$fpr" cv25519 encr never
            """)
        XCTAssertEqual(r.0, 0, "key generation in the VM vault: \(r.1)")
        guard r.0 == 0 else { return }
        print("VM split-GPG: key generated in the vault in \(seconds(since: t))")
        // `ody-gpg --verify SIG -` hands gpg the signature as /dev/fd/N (the
        // only form the vault accepts), as any descriptor-passing program
        // does: the guest needs /dev/fd as native domains have it (jailer.c
        // links it; in a VM the guest init must, devtmpfs has none).
        r = try run(vault, "test -e /dev/fd/0 && test -e /dev/stdin && echo present")
        XCTAssertEqual(r.1, "present\n", "the VM guest has no /dev/fd -> /proc/self/fd (scripts/guest-kit.d/init makes /dev a devtmpfs, which has none): \(r.1)")

        // First call from work: the vault asks for consent (odyssey.GpgConsent,
        // an `ask` in the add-on's policy), answered as `ody policy answer`
        // would; the ask comes from the VM, named by its channel.
        final class Outcome: @unchecked Sendable {   // written by one thread, read after `done`
            var result: (Int32, String)?
            let done = DispatchSemaphore(value: 0)
        }
        let signed = Outcome()
        nonisolated(unsafe) let host = dp!
        let vaultName = vault
        t = Date()
        Thread {
            signed.result = try? host.ody(["run", "-p", "-u", "user", "work", "--", """
                export ODYSSEY_GPG_DOMAIN=\(vaultName)
                echo 'signed data' > m && ody-gpg --detach-sign --armor < m > m.asc && ody-gpg --verify m.asc - < m
                """])
            signed.done.signal()
        }.start()
        let ask = try answerAsk("odyssey.GpgConsent+work", within: 120)
        XCTAssertEqual(ask?.source, vault, "the vault asked for consent")
        XCTAssertEqual(signed.done.wait(timeout: .now() + 180), .success, "the signature did not finish")
        r = try XCTUnwrap(signed.result)
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertTrue(r.1.contains("Good signature from \"Vault <vault@example.org>\""), r.1)
        print("VM split-GPG: sign + verify (consent asked and answered) in \(seconds(since: t))")
        XCTAssertEqual(try run("work", "head -n 1 m.asc").1, "-----BEGIN PGP SIGNATURE-----\n")
        // The same signature checked by work's own gpg with the public key
        // the vault exports (no /dev/fd needed on this path).
        r = try run("work", "ODYSSEY_GPG_DOMAIN=\(vault) ody-gpg --export --armor > vault.asc && gpg --batch --import vault.asc 2>/dev/null && gpg --batch --verify m.asc m")
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertTrue(r.1.contains("Good signature from \"Vault <vault@example.org>\""), r.1)

        // A signature over other bytes does not verify.
        r = try run("work", "echo 'other data' | ODYSSEY_GPG_DOMAIN=\(vault) ody-gpg --verify m.asc -")
        XCTAssertNotEqual(r.0, 0, r.1)
        XCTAssertTrue(r.1.contains("BAD signature"), r.1)

        // Encrypt to the vault's key and decrypt in the vault; consent is
        // remembered, so nothing asks again.
        t = Date()
        r = try run("work", """
            export ODYSSEY_GPG_DOMAIN=\(vault)
            echo 'the secret text' | ody-gpg --encrypt --armor -r vault@example.org > s.asc &&
            head -n 1 s.asc && ody-gpg --decrypt < s.asc
            """)
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertTrue(r.1.hasPrefix("-----BEGIN PGP MESSAGE-----\n"), r.1)
        XCTAssertTrue(r.1.contains("\nthe secret text\n"), r.1)
        print("VM split-GPG: encrypt + decrypt in \(seconds(since: t))")
        let pending = try dp.ody(["policy", "pending", "--json"]).1
        XCTAssertEqual(try JSONDecoder().decode([PendingAsk].self, from: Data(pending.utf8)).count, 0, "consent is remembered: \(pending)")

        // The secret key stayed in the vault: work's own gpg has none.
        r = try run("work", "gpg --batch --list-secret-keys 2>&1 | grep -c '^sec' || true")
        XCTAssertEqual(r.1, "0\n", "no secret key in work: \(r.1)")
        r = try run(vault, "gpg --batch --list-secret-keys | grep -c '^sec'")
        XCTAssertEqual(r.1, "1\n", r.1)

        // The add-on's option filter runs in the client before any call.
        r = try run("work", "ODYSSEY_GPG_DOMAIN=\(vault) ody-gpg --export-secret-keys")
        XCTAssertEqual(r.0, 2, r.1)
    }
}
