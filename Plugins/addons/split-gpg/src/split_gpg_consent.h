/*
 * split_gpg_consent.h - the vault's "may this domain use my keys?" question.
 *
 * The first call from a source domain makes the vault call
 * odyssey.GpgConsent+SOURCE in @adminvm. Its default policy is "ask", so the
 * host's ask machinery is the prompt; the admin-side service itself only
 * checks its argument and exits 0. Exit 0 is consent; anything else (126:
 * the user said no) refuses the gpg call. A consent is remembered per source
 * domain *uuid* (QREXEC_REMOTE_DOMAIN_UUID: a domain re-created under the
 * same name is asked again; no uuid, no memory) for autoaccept_seconds
 * (config, default 300; 0 = ask every time) as the modification time of
 * <rundir>/consent-SOURCE holding that uuid, where rundir is
 * $XDG_RUNTIME_DIR/odyssey-split-gpg (when $XDG_RUNTIME_DIR exists) or
 * /tmp/odyssey-split-gpg-<uid>, a
 * 0700 directory owned by the vault's user (anything else there - a symlink,
 * another owner, group or world access - means nothing is remembered).
 */
#ifndef SPLIT_GPG_CONSENT_H
#define SPLIT_GPG_CONSENT_H

#include <stddef.h>

#include "addon_common.h"

/* A domain name as Qubes allows them: a letter, then [A-Za-z0-9_.-], at
 * most 31 characters. */
int split_gpg_valid_domain(const char *s);

/* 0 if `source` may use the vault now (remembered, or just granted);
 * -1 with a one-line reason in why. Diagnostics go to err_fd. */
int consent_obtain(ody_addon *a, const char *source, int err_fd, char *why, size_t why_size);

/* odyssey.GpgConsent (admin side): checks the argument ("+SOURCE") and
 * logs the consent. The policy's ask already happened. */
int consent_service(ody_addon *a, const ody_service_call *call);

#endif
