// libvirt, opened at the first open() of an instance rather than linked:
// loading the plugin maps no libvirt (9 ms and ~11 MB of RSS saved in every
// odysseyd that never opens a libvirt backend), and a host without libvirt
// still loads the plugin; open() then fails with "libvirt is not installed".
// Every libvirt call goes through this table; its types are the headers'
// own (shim.h), so a changed signature is a compile error, not a crash.
import CLibvirt
import Glibc
import PluginKit

final class LibvirtAPI: @unchecked Sendable {
    static let soname = "libvirt.so.0"

    let virInitialize: ody_virInitialize_fn
    let virSetErrorFunc: ody_virSetErrorFunc_fn
    let virGetLastError: ody_virGetLastError_fn
    let virGetLastErrorMessage: ody_virGetLastErrorMessage_fn
    let virResetLastError: ody_virResetLastError_fn
    let virEventRegisterDefaultImpl: ody_virEventRegisterDefaultImpl_fn
    let virEventRunDefaultImpl: ody_virEventRunDefaultImpl_fn
    let virConnectOpen: ody_virConnectOpen_fn
    let virConnectClose: ody_virConnectClose_fn
    let virConnectRef: ody_virConnectRef_fn
    let virConnectIsAlive: ody_virConnectIsAlive_fn
    let virConnectDomainEventRegisterAny: ody_virConnectDomainEventRegisterAny_fn
    let virConnectDomainEventDeregisterAny: ody_virConnectDomainEventDeregisterAny_fn
    let virConnectListAllDomains: ody_virConnectListAllDomains_fn
    let virDomainLookupByName: ody_virDomainLookupByName_fn
    let virDomainDefineXML: ody_virDomainDefineXML_fn
    let virDomainUndefineFlags: ody_virDomainUndefineFlags_fn
    let virDomainFree: ody_virDomainFree_fn
    let virDomainCreate: ody_virDomainCreate_fn
    let virDomainShutdown: ody_virDomainShutdown_fn
    let virDomainDestroy: ody_virDomainDestroy_fn
    let virDomainSuspend: ody_virDomainSuspend_fn
    let virDomainResume: ody_virDomainResume_fn
    let virDomainIsActive: ody_virDomainIsActive_fn
    let virDomainGetInfo: ody_virDomainGetInfo_fn
    let virDomainGetState: ody_virDomainGetState_fn
    let virDomainGetName: ody_virDomainGetName_fn
    let virDomainGetUUIDString: ody_virDomainGetUUIDString_fn
    let virDomainGetMetadata: ody_virDomainGetMetadata_fn
    let virDomainGetXMLDesc: ody_virDomainGetXMLDesc_fn

    /// Resolves every call; the first missing symbol is the error.
    init(_ lib: SharedLibrary) throws(LibraryError) {
        virInitialize = try lib.function("virInitialize")
        virSetErrorFunc = try lib.function("virSetErrorFunc")
        virGetLastError = try lib.function("virGetLastError")
        virGetLastErrorMessage = try lib.function("virGetLastErrorMessage")
        virResetLastError = try lib.function("virResetLastError")
        virEventRegisterDefaultImpl = try lib.function("virEventRegisterDefaultImpl")
        virEventRunDefaultImpl = try lib.function("virEventRunDefaultImpl")
        virConnectOpen = try lib.function("virConnectOpen")
        virConnectClose = try lib.function("virConnectClose")
        virConnectRef = try lib.function("virConnectRef")
        virConnectIsAlive = try lib.function("virConnectIsAlive")
        virConnectDomainEventRegisterAny = try lib.function("virConnectDomainEventRegisterAny")
        virConnectDomainEventDeregisterAny = try lib.function("virConnectDomainEventDeregisterAny")
        virConnectListAllDomains = try lib.function("virConnectListAllDomains")
        virDomainLookupByName = try lib.function("virDomainLookupByName")
        virDomainDefineXML = try lib.function("virDomainDefineXML")
        virDomainUndefineFlags = try lib.function("virDomainUndefineFlags")
        virDomainFree = try lib.function("virDomainFree")
        virDomainCreate = try lib.function("virDomainCreate")
        virDomainShutdown = try lib.function("virDomainShutdown")
        virDomainDestroy = try lib.function("virDomainDestroy")
        virDomainSuspend = try lib.function("virDomainSuspend")
        virDomainResume = try lib.function("virDomainResume")
        virDomainIsActive = try lib.function("virDomainIsActive")
        virDomainGetInfo = try lib.function("virDomainGetInfo")
        virDomainGetState = try lib.function("virDomainGetState")
        virDomainGetName = try lib.function("virDomainGetName")
        virDomainGetUUIDString = try lib.function("virDomainGetUUIDString")
        virDomainGetMetadata = try lib.function("virDomainGetMetadata")
        virDomainGetXMLDesc = try lib.function("virDomainGetXMLDesc")
    }

    /// The process-wide libvirt: opened, resolved, initialised and its event
    /// loop running (EventLoop.swift), on the first call only.
    static let shared = LoadOnce<LibvirtAPI> { () throws(LibraryError) in
        let api = try LibvirtAPI(SharedLibrary.open(soname, package: "libvirt"))
        try LibvirtRuntime.start(api)
        return api
    }
}

extension LibvirtAPI {
    /// Every defined domain of `conn` with its name; each handle is freed
    /// after `body`. False if libvirt could not list them (its error is kept).
    func forEachDomain(_ conn: OpaquePointer, _ body: (OpaquePointer, String) -> Void) -> Bool {
        var doms: UnsafeMutablePointer<OpaquePointer?>?
        let n = virConnectListAllDomains(conn, &doms, 0)
        guard n >= 0, let doms else { return false }
        defer { free(doms) }
        for i in 0..<Int(n) {
            guard let d = doms[i] else { continue }
            defer { _ = virDomainFree(d) }
            if let np = virDomainGetName(d) { body(d, String(cString: np)) }
        }
        return true
    }
}
