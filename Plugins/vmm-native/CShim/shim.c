/* SwiftPM needs one source file per C target; the shim is header-only
 * (include/vmm_native_shim.h says why it exists). */
#include "vmm_native_shim.h"
