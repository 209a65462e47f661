/* The libvirt headers the vmm-libvirt plugin imports, and a function-pointer
 * type for every libvirt call it makes: the plugin does not link libvirt but
 * resolves these with dlsym (LibvirtAPI.swift), so the types come from the
 * declarations themselves and cannot drift from them. No code of its own. */
#ifndef ODYSSEY_CLIBVIRT_SHIM_H
#define ODYSSEY_CLIBVIRT_SHIM_H
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#define ODY_VIR_FN(name) typedef __typeof__(name) *ody_##name##_fn;
ODY_VIR_FN(virInitialize)
ODY_VIR_FN(virSetErrorFunc)
ODY_VIR_FN(virGetLastError)
ODY_VIR_FN(virGetLastErrorMessage)
ODY_VIR_FN(virResetLastError)
ODY_VIR_FN(virEventRegisterDefaultImpl)
ODY_VIR_FN(virEventRunDefaultImpl)
ODY_VIR_FN(virConnectOpen)
ODY_VIR_FN(virConnectClose)
ODY_VIR_FN(virConnectRef)
ODY_VIR_FN(virConnectIsAlive)
ODY_VIR_FN(virConnectDomainEventRegisterAny)
ODY_VIR_FN(virConnectDomainEventDeregisterAny)
ODY_VIR_FN(virConnectListAllDomains)
ODY_VIR_FN(virDomainLookupByName)
ODY_VIR_FN(virDomainDefineXML)
ODY_VIR_FN(virDomainUndefineFlags)
ODY_VIR_FN(virDomainFree)
ODY_VIR_FN(virDomainCreate)
ODY_VIR_FN(virDomainShutdown)
ODY_VIR_FN(virDomainDestroy)
ODY_VIR_FN(virDomainSuspend)
ODY_VIR_FN(virDomainResume)
ODY_VIR_FN(virDomainIsActive)
ODY_VIR_FN(virDomainGetInfo)
ODY_VIR_FN(virDomainGetState)
ODY_VIR_FN(virDomainGetName)
ODY_VIR_FN(virDomainGetUUIDString)
ODY_VIR_FN(virDomainGetMetadata)
ODY_VIR_FN(virDomainGetXMLDesc)
#undef ODY_VIR_FN
#endif
