// libxl, opened at the first open() of an instance rather than linked:
// loading the plugin maps no Xen library (libxenlight pulls in libxenctrl,
// libxenstore, libxenguest, libxentoollog, libyajl...), and a host without
// them still loads the plugin; open() then fails with "libxl is not
// installed". Every libxl call goes through this table; its types are the
// headers' own (shim.h), so a changed signature is a compile error.
import CXenlight
import PluginKit

final class XenAPI: @unchecked Sendable {
    let libxl_ctx_alloc: ody_libxl_ctx_alloc_fn
    let libxl_ctx_free: ody_libxl_ctx_free_fn
    let libxl_childproc_setmode: ody_libxl_childproc_setmode_fn
    let libxl_event_register_callbacks: ody_libxl_event_register_callbacks_fn
    let libxl_event_free: ody_libxl_event_free_fn
    let libxl_osevent_beforepoll: ody_libxl_osevent_beforepoll_fn
    let libxl_osevent_afterpoll: ody_libxl_osevent_afterpoll_fn
    let libxl_evenable_domain_death: ody_libxl_evenable_domain_death_fn
    let libxl_evdisable_domain_death: ody_libxl_evdisable_domain_death_fn
    let libxl_name_to_domid: ody_libxl_name_to_domid_fn
    let libxl_domid_to_name: ody_libxl_domid_to_name_fn
    let libxl_list_domain: ody_libxl_list_domain_fn
    let libxl_dominfo_list_free: ody_libxl_dominfo_list_free_fn
    let libxl_dominfo_init: ody_libxl_dominfo_init_fn
    let libxl_dominfo_dispose: ody_libxl_dominfo_dispose_fn
    let libxl_domain_info: ody_libxl_domain_info_fn
    let libxl_domain_config_init: ody_libxl_domain_config_init_fn
    let libxl_domain_config_dispose: ody_libxl_domain_config_dispose_fn
    let libxl_domain_build_info_init_type: ody_libxl_domain_build_info_init_type_fn
    let libxl_cpu_bitmap_alloc: ody_libxl_cpu_bitmap_alloc_fn
    let libxl_bitmap_set: ody_libxl_bitmap_set_fn
    let libxl_uuid_generate: ody_libxl_uuid_generate_fn
    let libxl_uuid_from_string: ody_libxl_uuid_from_string_fn
    let libxl_domain_create_new: ody_libxl_domain_create_new_fn
    let libxl_domain_destroy: ody_libxl_domain_destroy_fn
    let libxl_domain_shutdown: ody_libxl_domain_shutdown_fn
    let libxl_domain_pause: ody_libxl_domain_pause_fn
    let libxl_domain_unpause: ody_libxl_domain_unpause_fn
    let libxl_get_physinfo: ody_libxl_get_physinfo_fn
    let libxl_physinfo_init: ody_libxl_physinfo_init_fn
    let libxl_physinfo_dispose: ody_libxl_physinfo_dispose_fn
    let libxl_device_disk_init: ody_libxl_device_disk_init_fn

    /// Resolves every call; the first missing symbol is the error.
    init(_ lib: SharedLibrary) throws(LibraryError) {
        libxl_ctx_alloc = try lib.function("libxl_ctx_alloc")
        libxl_ctx_free = try lib.function("libxl_ctx_free")
        libxl_childproc_setmode = try lib.function("libxl_childproc_setmode")
        libxl_event_register_callbacks = try lib.function("libxl_event_register_callbacks")
        libxl_event_free = try lib.function("libxl_event_free")
        libxl_osevent_beforepoll = try lib.function("libxl_osevent_beforepoll")
        libxl_osevent_afterpoll = try lib.function("libxl_osevent_afterpoll")
        libxl_evenable_domain_death = try lib.function("libxl_evenable_domain_death")
        libxl_evdisable_domain_death = try lib.function("libxl_evdisable_domain_death")
        libxl_name_to_domid = try lib.function("libxl_name_to_domid")
        libxl_domid_to_name = try lib.function("libxl_domid_to_name")
        libxl_list_domain = try lib.function("libxl_list_domain")
        libxl_dominfo_list_free = try lib.function("libxl_dominfo_list_free")
        libxl_dominfo_init = try lib.function("libxl_dominfo_init")
        libxl_dominfo_dispose = try lib.function("libxl_dominfo_dispose")
        libxl_domain_info = try lib.function("libxl_domain_info")
        libxl_domain_config_init = try lib.function("libxl_domain_config_init")
        libxl_domain_config_dispose = try lib.function("libxl_domain_config_dispose")
        libxl_domain_build_info_init_type = try lib.function("libxl_domain_build_info_init_type")
        libxl_cpu_bitmap_alloc = try lib.function("libxl_cpu_bitmap_alloc")
        libxl_bitmap_set = try lib.function("libxl_bitmap_set")
        libxl_uuid_generate = try lib.function("libxl_uuid_generate")
        libxl_uuid_from_string = try lib.function("libxl_uuid_from_string")
        libxl_domain_create_new = try lib.function("libxl_domain_create_new")
        libxl_domain_destroy = try lib.function("libxl_domain_destroy")
        libxl_domain_shutdown = try lib.function("libxl_domain_shutdown")
        libxl_domain_pause = try lib.function("libxl_domain_pause")
        libxl_domain_unpause = try lib.function("libxl_domain_unpause")
        libxl_get_physinfo = try lib.function("libxl_get_physinfo")
        libxl_physinfo_init = try lib.function("libxl_physinfo_init")
        libxl_physinfo_dispose = try lib.function("libxl_physinfo_dispose")
        libxl_device_disk_init = try lib.function("libxl_device_disk_init")
    }

    /// The process-wide libxl, opened and resolved on the first call only
    /// (libxenlight's own DT_NEEDED brings libxentoollog and the rest).
    static let shared = LoadOnce<XenAPI> { () throws(LibraryError) in
        try XenAPI(SharedLibrary.open(ODY_LIBXENLIGHT_SONAME, package: "libxl"))
    }
}
