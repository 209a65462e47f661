/*
 * abi_layout.c - pins the ABI's struct sizes and member offsets at compile
 * time (x86-64 / aarch64 LP64). If one of these fails, the change broke every
 * plugin already built: grow structs only at the end and bump ODY_ABI_MINOR.
 * Tests/ABITests pins the same numbers from Swift, so the header as Swift
 * imports it agrees with the header as C compiles it.
 */
#include <stddef.h>
#include "odyssey_plugin.h"

_Static_assert(sizeof(void *) == 8, "ABI v1 is defined for LP64 targets");
_Static_assert(sizeof(ody_error) == 272, "ody_error size");
_Static_assert(offsetof(ody_error, message) == 16, "ody_error.message");
_Static_assert(sizeof(ody_event) == 416, "ody_event size");
_Static_assert(offsetof(ody_event, seq) == 8, "ody_event.seq");
_Static_assert(offsetof(ody_event, domain) == 32, "ody_event.domain");
_Static_assert(offsetof(ody_event, message) == 160, "ody_event.message");
_Static_assert(sizeof(ody_host_services) == 72, "ody_host_services size (1.3)");
_Static_assert(offsetof(ody_host_services, gui_focus) == 48, "ody_host_services.gui_focus (1.3)");
_Static_assert(offsetof(ody_host_services, clipboard_paste) == 64, "ody_host_services.clipboard_paste (1.3)");
_Static_assert(offsetof(ody_host_services, log) == 8, "ody_host_services.log");
_Static_assert(offsetof(ody_host_services, emit_event) == 16, "ody_host_services.emit_event");
_Static_assert(offsetof(ody_host_services, config_get) == 24, "ody_host_services.config_get");
_Static_assert(offsetof(ody_host_services, call_service) == 32, "ody_host_services.call_service");
_Static_assert(offsetof(ody_host_services, call_finish) == 40, "ody_host_services.call_finish");
_Static_assert(sizeof(ody_factory) == 32, "ody_factory size");
_Static_assert(offsetof(ody_factory, name) == 8, "ody_factory.name");
_Static_assert(offsetof(ody_factory, capabilities) == 16, "ody_factory.capabilities");
_Static_assert(offsetof(ody_factory, ops) == 24, "ody_factory.ops");
_Static_assert(sizeof(ody_entry_request) == 32, "ody_entry_request size");
_Static_assert(offsetof(ody_entry_request, host) == 16, "ody_entry_request.host");
_Static_assert(offsetof(ody_entry_request, host_ctx) == 24, "ody_entry_request.host_ctx");
_Static_assert(sizeof(ody_plugin_info) == 64, "ody_plugin_info size");
_Static_assert(offsetof(ody_plugin_info, id) == 16, "ody_plugin_info.id");
_Static_assert(offsetof(ody_plugin_info, factory_count) == 48, "ody_plugin_info.factory_count");
_Static_assert(offsetof(ody_plugin_info, factories) == 56, "ody_plugin_info.factories");
_Static_assert(sizeof(ody_instance_args) == 32, "ody_instance_args size");
_Static_assert(offsetof(ody_instance_args, host) == 8, "ody_instance_args.host");
_Static_assert(offsetof(ody_instance_args, instance_name) == 24, "ody_instance_args.instance_name");
_Static_assert(sizeof(ody_domain_config) == 232, "ody_domain_config size");
_Static_assert(offsetof(ody_domain_config, volume_count) == 144, "ody_domain_config.volume_count (1.2)");
_Static_assert(offsetof(ody_domain_config, volumes) == 152, "ody_domain_config.volumes");
_Static_assert(offsetof(ody_domain_config, channel) == 168, "ody_domain_config.channel");
_Static_assert(offsetof(ody_domain_config, agent_env) == 216, "ody_domain_config.agent_env");
_Static_assert(offsetof(ody_domain_config, run_dir) == 224, "ody_domain_config.run_dir");
_Static_assert(sizeof(ody_volume) == 32, "ody_volume size");
_Static_assert(offsetof(ody_volume, path) == 16, "ody_volume.path");
_Static_assert(sizeof(ody_share) == 32, "ody_share size");
_Static_assert(sizeof(ody_channel_desc) == 336, "ody_channel_desc size");
_Static_assert(offsetof(ody_channel_desc, path) == 16, "ody_channel_desc.path");
_Static_assert(offsetof(ody_domain_config, name) == 8, "ody_domain_config.name");
_Static_assert(offsetof(ody_domain_config, memory_mib) == 112, "ody_domain_config.memory_mib");
_Static_assert(offsetof(ody_domain_config, params) == 136, "ody_domain_config.params");
_Static_assert(sizeof(ody_domain_info) == 144, "ody_domain_info size");
_Static_assert(offsetof(ody_domain_info, memory_kib) == 112, "ody_domain_info.memory_kib");
_Static_assert(offsetof(ody_domain_info, pid) == 140, "ody_domain_info.pid");
_Static_assert(sizeof(ody_vmm_ops) == 96, "ody_vmm_ops size");
_Static_assert(offsetof(ody_vmm_ops, open) == 8, "ody_vmm_ops.open");
_Static_assert(offsetof(ody_vmm_ops, list) == 88, "ody_vmm_ops.list");
_Static_assert(sizeof(ody_vchan_endpoint) == 144, "ody_vchan_endpoint size");
_Static_assert(offsetof(ody_vchan_endpoint, local_domain) == 16, "ody_vchan_endpoint.local_domain");
_Static_assert(sizeof(ody_vchan_ops) == 128, "ody_vchan_ops size");
_Static_assert(offsetof(ody_vchan_ops, describe_domain) == 120, "ody_vchan_ops.describe_domain (1.2)");
_Static_assert(offsetof(ody_vchan_ops, open) == 8, "ody_vchan_ops.open");
_Static_assert(offsetof(ody_vchan_ops, close) == 112, "ody_vchan_ops.close");
_Static_assert(sizeof(ody_addon_service) == 16, "ody_addon_service size");
_Static_assert(sizeof(ody_addon_desc) == 40, "ody_addon_desc size");
_Static_assert(offsetof(ody_addon_desc, event_hooks) == 32, "ody_addon_desc.event_hooks");
_Static_assert(sizeof(ody_service_call) == 664, "ody_service_call size");
_Static_assert(offsetof(ody_service_call, source) == 520, "ody_service_call.source");
_Static_assert(offsetof(ody_service_call, stdin_fd) == 648, "ody_service_call.stdin_fd");
_Static_assert(sizeof(ody_command_call) == 32, "ody_command_call size");
_Static_assert(offsetof(ody_command_call, argv) == 16, "ody_command_call.argv");
_Static_assert(offsetof(ody_command_call, stderr_fd) == 28, "ody_command_call.stderr_fd");
_Static_assert(sizeof(ody_addon_ops) == 56, "ody_addon_ops size");
_Static_assert(offsetof(ody_addon_ops, run_command) == 48, "ody_addon_ops.run_command");
_Static_assert(offsetof(ody_addon_ops, on_event) == 40, "ody_addon_ops.on_event");
_Static_assert(sizeof(ody_gui_ops) == 40, "ody_gui_ops size (1.3)");
_Static_assert(offsetof(ody_gui_ops, attach) == 24, "ody_gui_ops.attach (1.3)");
_Static_assert(offsetof(ody_gui_ops, detach) == 32, "ody_gui_ops.detach (1.3)");
_Static_assert(sizeof(ody_gui_domain) == 144, "ody_gui_domain size (1.3)");
_Static_assert(offsetof(ody_gui_domain, label) == 72, "ody_gui_domain.label");
_Static_assert(offsetof(ody_gui_domain, color) == 136, "ody_gui_domain.color");
_Static_assert(offsetof(ody_gui_domain, channel_fd) == 140, "ody_gui_domain.channel_fd");

