/*
 * file_name.c - the 256-byte name block of qubes.OpenInVM.
 *
 * The name is the only part of the request the receiving domain uses to
 * build a path, so it is reduced to one harmless path component: no '/',
 * not empty, not "." or "..", and only [0-9A-Za-z._+@-] (Qubes' set; any
 * other byte, including every byte of a non-ASCII character, becomes '_').
 * The file lands in a fresh private directory and reaches the viewer as an
 * absolute path, so a leading '-' cannot pose as an option.
 */
#include "open_in_vm_internal.h"

#include <string.h>

static const char view_only_prefix[] = OPEN_VIEW_ONLY_PREFIX;
#define VIEW_ONLY_PREFIX_LEN (sizeof view_only_prefix - 1)

size_t name_block_max_base(int view_only) {
    return OPEN_NAME_BLOCK - 1 - (view_only ? VIEW_ONLY_PREFIX_LEN : 0);
}

int name_block_make(unsigned char block[OPEN_NAME_BLOCK], const char *base, int view_only) {
    size_t len = strlen(base);
    if (len > name_block_max_base(view_only)) return -1;
    memset(block, 0, OPEN_NAME_BLOCK);
    size_t at = 0;
    if (view_only) {
        memcpy(block, view_only_prefix, VIEW_ONLY_PREFIX_LEN);
        at = VIEW_ONLY_PREFIX_LEN;
    }
    memcpy(block + at, base, len);
    return 0;
}

static int safe_name_char(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           c == '.' || c == '_' || c == '+' || c == '@' || c == '-';
}

int name_block_parse(const unsigned char untrusted_block[OPEN_NAME_BLOCK], char name[OPEN_NAME_BLOCK],
                     int *view_only, const char **why) {
    const unsigned char *end = memchr(untrusted_block, 0, OPEN_NAME_BLOCK);
    if (end == NULL) {
        *why = "the file name has no NUL within its 256 bytes";
        return -1;
    }
    const unsigned char *untrusted_name = untrusted_block;
    size_t len = (size_t)(end - untrusted_block);
    *view_only = 0;
    if (len >= VIEW_ONLY_PREFIX_LEN && memcmp(untrusted_name, view_only_prefix, VIEW_ONLY_PREFIX_LEN) == 0) {
        *view_only = 1;
        untrusted_name += VIEW_ONLY_PREFIX_LEN;
        len -= VIEW_ONLY_PREFIX_LEN;
    }
    if (len == 0) {
        *why = "the file name is empty";
        return -1;
    }
    if (memchr(untrusted_name, '/', len) != NULL) {
        *why = "the file name contains '/' (only a base name is accepted)";
        return -1;
    }
    if ((len == 1 && untrusted_name[0] == '.') || (len == 2 && untrusted_name[0] == '.' && untrusted_name[1] == '.')) {
        *why = "the file name is \".\" or \"..\"";
        return -1;
    }
    for (size_t i = 0; i < len; i++) name[i] = safe_name_char(untrusted_name[i]) ? (char)untrusted_name[i] : '_';
    name[len] = 0;
    return 0;
}
