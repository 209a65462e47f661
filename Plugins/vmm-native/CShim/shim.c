/* The out-of-line part of the shim (include/vmm_native_shim.h says why C). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>
#include "vmm_native_shim.h"

/* Path of the shared object this code is linked into (libvmm-native.so):
 * dladdr() needs _GNU_SOURCE's Dl_info, which Swift's Glibc module lacks. */
const char *vmm_module_path(void) {
    Dl_info info;
    if (dladdr((const void *)&vmm_module_path, &info) == 0 || info.dli_fname == NULL) return NULL;
    return info.dli_fname;
}

/* pipe2(2) and F_SETPIPE_SZ are _GNU_SOURCE too. */
int vmm_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int vmm_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
