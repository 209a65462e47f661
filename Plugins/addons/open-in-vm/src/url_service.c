/*
 * url_service.c - qubes.OpenURL, run in the domain that opens the URL.
 *
 * stdin: one URL, optionally ended by one newline, then EOF; at most
 * OPEN_URL_MAX bytes. Accepted only if it starts with http://, https:// or
 * ftp:// (scheme in any case), names something after the scheme, and is
 * printable ASCII throughout: no space, no control character (so no second
 * line), no byte above 0x7e (international names arrive punycoded or
 * percent-encoded). Everything else is refused, never repaired: file:,
 * javascript:, data: and friends would let the caller reach this domain's
 * files or the handler's scripting. The URL itself is never echoed back.
 */
#define _GNU_SOURCE
#include "open_in_vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SVC OPEN_URL_SERVICE

static const char *url_problem(const char *untrusted_url, size_t len) {
    static const char *const schemes[] = {"http://", "https://", "ftp://"};
    if (len == 0) return "it is empty";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)untrusted_url[i];
        if (c <= 0x20 || c >= 0x7f) return "it contains a space, a control character or a non-ASCII byte";
    }
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i]);
        if (len >= n && strncasecmp(untrusted_url, schemes[i], n) == 0)
            return len > n ? NULL : "it names nothing after the scheme";
    }
    return "only http://, https:// and ftp:// URLs are opened";
}

int url_service(ody_addon *a, const ody_service_call *call) {
    int err = call->stderr_fd;
    /* +2: one newline may end a maximal URL; anything beyond is too long. */
    char untrusted_url[OPEN_URL_MAX + 2];
    ssize_t n = read_upto(call->stdin_fd, untrusted_url, sizeof untrusted_url);
    if (n < 0) {
        say(err, SVC ": reading the URL from %s failed: %s", call->source, strerror(errno));
        return 1;
    }
    size_t len = (size_t)n;
    if (len > 0 && untrusted_url[len - 1] == '\n') len--;
    if (len > OPEN_URL_MAX) {
        say(err, SVC ": refused a URL from %s: longer than %d bytes", call->source, OPEN_URL_MAX);
        return 1;
    }
    const char *why = url_problem(untrusted_url, len);
    if (why != NULL) {
        say(err, SVC ": refused a URL from %s: %s", call->source, why);
        return 1;
    }
    untrusted_url[len] = 0;
    const char *url = untrusted_url;   /* validated above */

    char configured[PATH_MAX], handler[PATH_MAX];
    const char *name = addon_config(a, "url_handler", configured, sizeof configured, OPEN_DEFAULT_PROGRAM);
    if (program_resolve(name, handler, sizeof handler) != 0) {
        say(err, SVC ": URL handler \"%s\" %s (config [addon.open-in-vm] url_handler)", name,
            errno == EINVAL ? "is a relative path; give a name on PATH or an absolute path" : "not found or not executable");
        return 1;
    }
    int status = 0;
    if (program_run(handler, url, &status) != 0) {
        say(err, SVC ": cannot start the URL handler %s: %s", handler, strerror(errno));
        return 1;
    }
    if (status != 0) {
        say(err, SVC ": the URL handler %s exited with status %d", handler, status);
        return 1;
    }
    return 0;
}
