// A described domain's disks into libxl: the files XenRunFiles makes, each
// a blkback "phy" disk through vmm-xen's own hotplug script (BlockScript),
// which puts the file on a loop device (read-only ones with losetup -r) and
// detaches it when the domain is destroyed. libxl frees the array
// (libxl_domain_config_dispose), so it is calloc'd and its strings strdup'd.
import CXenlight
import Glibc

extension XenVmm {
    /// The stored layout's disks (empty for a domain defined by params only).
    func storedDisks(_ def: XenDefinition) -> Result<[XenGuestLayout.Disk], XenRunFiles.Failure> {
        guard def.params["described"] == "1" else { return .success([]) }
        guard let disks = XenGuestLayout.disks(from: def.params) else {
            return .failure(.init(message: "the stored disk layout is malformed (was \(store.file) edited by hand? define the domain again)"))
        }
        return .success(disks)
    }

    /// Makes the disks' files and puts them into `cfg`.
    func attach(_ disks: [XenGuestLayout.Disk], runDir: String, _ cfg: inout libxl_domain_config) throws(XenRunFiles.Failure) {
        guard !disks.isEmpty else { return }
        let script: String
        switch BlockScript.install(in: store.directory) {
        case .success(let p): script = p
        case .failure(let f): throw f
        }
        let files = try XenRunFiles.prepare(disks, runDir: runDir, shareCache: store.directory + "/share-images")
        guard let raw = calloc(files.count, MemoryLayout<libxl_device_disk>.stride) else {
            XenRunFiles.remove(disks, runDir: runDir)
            throw .init(message: "out of memory for \(files.count) disks")
        }
        let array = raw.bindMemory(to: libxl_device_disk.self, capacity: files.count)
        for (i, f) in files.enumerated() {
            xl.libxl_device_disk_init(&array[i])
            array[i].backend_domid = 0
            array[i].pdev_path = strdup(f.path)
            array[i].vdev = strdup(f.vdev)
            array[i].backend = LIBXL_DISK_BACKEND_PHY
            array[i].format = LIBXL_DISK_FORMAT_RAW
            array[i].script = strdup(script)
            array[i].readwrite = f.readOnly ? 0 : 1
        }
        cfg.disks = array
        cfg.num_disks = Int32(files.count)
    }

    /// After a domain's death: its per-start files go, unless it runs again already.
    func removeRunFiles(of name: String) {
        guard let def = lock.with({ store.domains[name] }), case .success(let disks) = storedDisks(def), !disks.isEmpty,
              domid(of: name) == nil else { return }
        XenRunFiles.remove(disks, runDir: def.params["run_dir"] ?? "")
    }
}
