/* The libvirt headers the vmm-libvirt plugin imports; no code of its own. */
#ifndef ODYSSEY_CLIBVIRT_SHIM_H
#define ODYSSEY_CLIBVIRT_SHIM_H
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#endif
