/* index.c - reads the add-ons view's index, written by odysseyd (AddonView.swift). */
#define _GNU_SOURCE
#include "runner.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Names in the index come from manifests odysseyd already validated; the
 * fields are still bounded here so a damaged index cannot overflow. */
static int copy_field(char *dst, size_t size, const char *src) {
    size_t n = strlen(src);
    if (n == 0 || n >= size) return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

int index_find(const struct runner_env *env, const char *kind, const char *name, struct addon_entry *out) {
    FILE *f = fopen(env->index_path, "re");
    if (f == NULL) {
        fprintf(stderr, "odyssey-addon-run: cannot read the add-on index %s: %s\n", env->index_path, strerror(errno));
        return -1;
    }
    char line[2048];
    int found = -1;
    while (found != 0 && fgets(line, sizeof line, f) != NULL) {
        char *save = NULL;
        char *fields[6] = {0};
        int n = 0;
        for (char *t = strtok_r(line, " \t\n", &save); t != NULL && n < 6; t = strtok_r(NULL, " \t\n", &save))
            fields[n++] = t;
        if (n < 1 || strcmp(fields[0], kind) != 0) continue;
        memset(out, 0, sizeof *out);
        if (strcmp(kind, "service") == 0 && n == 6 && strcmp(fields[2], name) == 0) {
            if (copy_field(out->side, sizeof out->side, fields[1]) == 0 &&
                copy_field(out->id, sizeof out->id, fields[3]) == 0 &&
                copy_field(out->lib, sizeof out->lib, fields[4]) == 0 &&
                copy_field(out->factory, sizeof out->factory, fields[5]) == 0)
                found = 0;
        } else if (strcmp(kind, "command") == 0 && n == 5 && strcmp(fields[1], name) == 0) {
            if (copy_field(out->id, sizeof out->id, fields[2]) == 0 &&
                copy_field(out->lib, sizeof out->lib, fields[3]) == 0 &&
                copy_field(out->factory, sizeof out->factory, fields[4]) == 0)
                found = 0;
        }
    }
    fclose(f);
    if (found != 0) fprintf(stderr, "odyssey-addon-run: no installed add-on provides the %s %s\n", kind, name);
    return found;
}
